"""KPI modules: one per report, named like its notebook (`notebooks/<report>.ipynb`).

Each exposes the report contract `headline(con, period, **params) -> str`,
`notes(con, period, **params) -> list[str]` and `metrics(con, period, **params) -> list[Metric]`, plus the
functions its notebook's tables and charts call, each `fn(con, period, **params) -> pd.DataFrame`. Like
Kedro nodes: a read-only warehouse connection and a `statex_bi.periods.Period` in, a small frame out;
SQL does the work, pandas only shapes the small result. No KPI logic lives in a notebook, and no KPI
module imports a connector, the alerts or the runner (pyproject.toml's import contracts).
"""
