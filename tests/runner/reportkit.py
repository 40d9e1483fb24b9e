"""Helpers for the report runner tests: tiny notebooks, params files, seeded warehouses, a Sentry sink."""

from __future__ import annotations

import gzip
import json
import random
import re
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARAMETERS_CELL = 'period_start = "2026-01-01"\nperiod_end = "2026-01-07"\nrun_id = ""\nmin_amount = 0'

# Cells of the notebook that succeeds: read the warehouse read-only, publish two KPIs, show them.
ORDERS_CELLS = [
    "import duckdb, json, os\nfrom statex_bi import publish",
    (
        "con = duckdb.connect(os.environ['STATEX_BI_DB'], read_only=True)\n"
        "count, revenue = con.execute('SELECT count(*), coalesce(sum(amount), 0) FROM raw_test.orders "
        "WHERE ordered_on BETWEEN ? AND ? AND amount >= ?', [period_start, period_end, min_amount]).fetchone()\n"
        "con.close()"
    ),
    (
        "published = [publish.metric('orders.count', count, unit='count', metric_type='COUNTER', source='test'),\n"
        "             publish.metric('orders.revenue', revenue, unit='EUR', tags={'min_amount': min_amount})]\n"
        "print(json.dumps(published))"
    ),
    "from IPython.display import HTML\nHTML(f'<p class=\"orders-line\">{count} orders</p>')",
]


def write_notebook(
    folder: Path, stem: str, cells: list[str], title: str | None = None, parameters: str = PARAMETERS_CELL
) -> Path:
    """A notebook `stem.ipynb`: a '# title' markdown cell, the `parameters` cell, then `cells` as code."""
    nb = new_notebook(
        cells=[
            new_markdown_cell(f"# {title or stem}\n\nA test report."),
            new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            *(new_code_cell(source) for source in cells),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def write_params(path: Path, notebooks: dict[str, Any], **extra: Any) -> Path:
    """A params file next to a `notebooks/` folder (period: last full week unless `extra` gives dates)."""
    data = {"title": "Test review", "notebooks_dir": "notebooks", **extra}
    if "start" not in data and "end" not in data:
        data.setdefault("period", "last full week")
    data["notebooks"] = notebooks
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def seed_orders(db: Path, seed: int = 11, days: int = 60) -> list[tuple[int, float, date]]:
    """A raw_test.orders table of random orders; returns the rows written."""
    rng = random.Random(seed)
    first = date(2026, 2, 1)
    count = rng.randint(80, 120)
    rows = [(i, round(rng.uniform(1, 200), 2), first + timedelta(days=rng.randrange(days))) for i in range(count)]
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw_test")
        con.execute("CREATE OR REPLACE TABLE raw_test.orders (id INTEGER, amount DOUBLE, ordered_on DATE)")
        con.executemany("INSERT INTO raw_test.orders VALUES (?, ?, ?)", rows)
    finally:
        con.close()
    return rows


def expected_orders(rows: list[tuple[int, float, date]], start: date, end: date, min_amount: float) -> dict:
    """The two KPIs computed in Python from the rows, independently of the notebook's SQL."""
    chosen = [amount for _, amount, day in rows if start <= day <= end and amount >= min_amount]
    return {"orders.count": float(len(chosen)), "orders.revenue": round(sum(chosen), 4)}


def metric_rows(db: Path, run_id: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT report, metric_name, CAST(value AS DOUBLE), unit, period_start, period_end "
            "FROM monitoring.monitoring_metrics WHERE run_id = ? ORDER BY report, metric_name",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def printed_records(ipynb: Path) -> list[dict]:
    """The records the notebook printed (what publish.metric returned inside the kernel)."""
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("text", "").startswith("[{"):
                return json.loads(output["text"])
    raise AssertionError(f"{ipynb} printed no records")


def parse_envelope(body: bytes) -> list[tuple[dict, bytes]]:
    """Sentry envelope items: (item header, payload); the first line is the envelope header."""
    items = []
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class SentrySink:
    """A loopback Sentry: stores each event posted to /api/<project>/envelope/."""

    ENVELOPE_PATH = re.compile(r"^/api/(\d+)/envelope/")

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.raw: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.ENVELOPE_MATCH.match(self.path):
                    sink.raw.append(body)
                    sink.events.extend(json.loads(p) for h, p in parse_envelope(body) if h.get("type") == "event")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        Handler.ENVELOPE_MATCH = self.ENVELOPE_PATH
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"

    def __enter__(self) -> SentrySink:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
