"""outputs/index.html groups runs by parameter set, newest first, the latest of each at the top, times for people."""

from __future__ import annotations

import re

from statex_bi.runner.index import group_runs, render, when


def _run(run_id: str, params: str, started: str, status: str = "succeeded", start: str = "2026-11-23",
         end: str = "2026-11-29") -> dict:
    return {
        "run_id": run_id, "title": f"{params.title()} review", "params_file": f"/srv/statex/params/{params}.yaml",
        "period": {"start": start, "end": end}, "started_at": started,
        "finished_at": started.replace(":00+00:00", ":42+00:00"), "status": status,
        "notebooks": {"growth": {"status": status, "title": "Growth", "html": "growth.html", "pdf": "growth.pdf",
                                 "duration_s": 75.4}},
    }


RUNS = [
    _run("w1", "weekly", "2026-11-23T06:00:00+00:00", start="2026-11-16", end="2026-11-22"),
    _run("m1", "monthly", "2026-12-01T05:00:00+00:00", start="2026-11-01", end="2026-11-30"),
    _run("w3", "weekly", "2026-11-30T06:00:00+00:00", status="failed"),
    _run("adhoc", "q4", "2026-11-28T09:30:00+00:00"),
    _run("w2", "weekly", "2026-11-29T06:00:00+00:00"),
]


def test_runs_are_grouped_by_parameter_set_and_sets_ordered_by_their_latest_run():
    groups = group_runs(RUNS)
    assert [(name.rsplit("/", 1)[-1], [r["run_id"] for r in runs]) for name, runs in groups] == [
        ("monthly.yaml", ["m1"]), ("weekly.yaml", ["w3", "w2", "w1"]), ("q4.yaml", ["adhoc"])]


def test_the_index_shows_the_latest_run_of_each_set_first_with_human_times():
    page = render(RUNS)
    sets = re.findall(r"<h2>([^<]+) <span", page)
    assert sets == ["Monthly review", "Weekly review", "Q4 review"]
    weekly = page[page.index("Weekly review"):page.index("Q4 review")]
    latest, earlier = weekly.split('<div class="earlier">')
    assert 'id="w3"' in latest and "Latest: 23 Nov 2026 – 29 Nov 2026" in latest
    assert "run Mon 30 Nov 2026, 06:00 UTC · took 42 s" in latest
    assert 'href="w3/growth.pdf">PDF</a>' in latest and "1 min 15 s" in latest
    assert earlier.index('id="w2"') < earlier.index('id="w1"'), "earlier runs newest first"
    assert "Earlier runs (2)" in earlier and "Sun 29 Nov 2026, 06:00 UTC" in earlier
    assert "T06:00:00" not in page, "no ISO timestamps for people"
    assert 'href="metrics.html"' in page


def test_when_reads_like_a_date_and_says_when_it_cannot():
    assert when("2026-12-01T05:07:09.123+00:00") == "Tue 1 Dec 2026, 05:07 UTC"
    assert when("2026-12-01T06:07:00+01:00") == "Tue 1 Dec 2026, 05:07 UTC"
    assert when(None) == "?"


def test_the_index_comes_with_the_kpi_catalog_even_when_the_warehouse_cannot_be_read(db_file, tmp_path):
    from statex_bi.metrics import registry
    from statex_bi.runner.index import write_index

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    write_index(outputs, {})
    page = (outputs / "metrics.html").read_text(encoding="utf-8")
    assert "Latest values unavailable" in page and str(db_file) in page
    assert all(kpi.label in page for kpi in registry.kpis().values())
