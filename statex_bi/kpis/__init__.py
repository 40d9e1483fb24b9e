"""KPI functions: one module per report area, each function `fn(con, period, **params) -> pd.DataFrame`.

Like Kedro nodes: a read-only warehouse connection and a `statex_bi.periods.Period` in, a small frame
out; SQL does the work, pandas only shapes the small result. Notebooks call these and publish the
numbers through `statex_bi.publish.metric`; no KPI logic lives in a notebook.
"""
