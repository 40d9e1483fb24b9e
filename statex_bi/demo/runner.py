"""`statex-bi demo`: serve the simulated company on loopback and load it through the real connectors."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

from statex_bi import sources, warehouse
from statex_bi.config import db_path, raw_url
from statex_bi.demo.apis import REGISTRY
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import ingest
from statex_bi.periods import TODAY_VARIABLE
from statex_bi.sources.contract import IngestRequest
from statex_bi.transform import lake
from statex_bi.transform.build import state_dir

DEMO_PSEUDONYM_KEY = "statex-bi-simulated-company"


def _print(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Point the connectors at the sandboxes; restore the caller's environment afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def served(world: World, names: list[str], progress: Callable[[str], None] = _print) -> Iterator[None]:
    """Serve `world` from the named sandbox APIs, with the environment pointing connectors at them.

    The connectors' clock is the simulated company's: the day after the world's last day ($STATEX_BI_TODAY),
    so a window in the past loads the same whatever the day (no retention clamp counted back from today).
    """
    with ExitStack() as stack:
        # Simulated people need no secret key; a key the user set for real data is left alone.
        key = os.environ.get("STATEX_BI_PSEUDONYM_KEY") or DEMO_PSEUDONYM_KEY
        env: dict[str, str] = {"STATEX_BI_PSEUDONYM_KEY": key,
                               TODAY_VARIABLE: (world.config.end + timedelta(days=1)).isoformat()}
        for name in names:
            api = importlib.import_module(REGISTRY[name])
            sandbox = stack.enter_context(api.build(world))
            env.update(api.environment(sandbox.url))
            progress(f"demo: {name} sandbox at {sandbox.url}")
        stack.enter_context(patched_environ(env))
        yield


def _fresh_demo_warehouse(db: Path, wait: float, progress: Callable[[str], None]) -> None:
    """Start the demo warehouse from scratch (two seeds or windows never mix); refuse one holding real data,
    and a lake ($STATEX_BI_RAW_URL) holding raw tables of a warehouse other than this earlier demo."""
    url = raw_url()
    datasets = [sources.spec(name).dataset for name in sources.available()]
    held = lake.datasets_held(url, datasets) if url is not None else []
    if held and not db.exists():
        raise ConfigError(f"the lake {url} holds raw tables ({', '.join(held)}) of another warehouse than {db}: "
                          "the demo replaces them; point $STATEX_BI_RAW_URL at a folder of its own for the demo")
    if db.exists():
        with warehouse.writer(db, wait=wait) as con:
            warehouse.claim(con, warehouse.DEMO, db)  # raises before anything is deleted
        progress(f"demo: replacing the earlier demo warehouse {db}")
        for leftover in (db, db.with_name(db.name + ".wal")):
            leftover.unlink(missing_ok=True)
    # dlt's and dbt's local working state (cursors, pending packages, target/) belong to the warehouse.
    shutil.rmtree(db.parent / f".{db.stem}.dlt", ignore_errors=True)
    shutil.rmtree(state_dir(db), ignore_errors=True)
    if held:  # the earlier demo's raw tables, outside the warehouse file
        lake.drop_datasets(url, held)
    with warehouse.writer(db, wait=wait) as con:
        warehouse.claim(con, warehouse.DEMO, db)


def _write_billing_files(world: World, db: Path, progress: Callable[[str], None]) -> Path:
    """The simulated AWS and Azure FOCUS exports, written where `billing --dir` reads them (beside the warehouse)."""
    folder = db.parent / f"{db.stem}.focus"
    shutil.rmtree(folder, ignore_errors=True)
    files = world.infra.write_focus_files(folder)
    progress(f"demo: {len(files)} FOCUS files (AWS, Azure) written to {folder}")
    return folder


def run_demo(
    start: date | None = None,
    end: date | None = None,
    seed: int = 7,
    scale: float = 1.0,
    wait: float = 0.0,
    db: Path | None = None,
    progress: Callable[[str], None] = _print,
) -> int:
    """Simulate the company into a new demo warehouse: serve it from sandbox APIs, ingest every source.

    An earlier demo warehouse at `db` is deleted first; a warehouse holding real data is refused.

    Returns:
        0 when every source loaded, 1 otherwise (the others still load).
    """
    default = WorldConfig.default(seed=seed, scale=scale)
    config = WorldConfig(start or default.start, end or default.end, seed, scale)
    db = db or db_path()
    _fresh_demo_warehouse(db, wait, progress)
    world = World(config)
    progress(f"demo: simulating Statex from {config.start} to {config.end} (seed {seed}, scale {scale})")
    installed = set(sources.available())
    names = [name for name in REGISTRY if name in installed]
    billing_dir = _write_billing_files(world, db, progress) if "billing" in installed else None
    with served(world, names, progress):
        request = IngestRequest(start=config.start, end=config.end, progress=progress, dir=billing_dir)
        results = ingest(names + (["billing"] if billing_dir else []), request, db=db, wait=wait,
                         kind=warehouse.DEMO)
    failed = [r.source for r in results if r.status != "succeeded"]
    progress("demo: loaded " + ", ".join(r.source for r in results if r.status == "succeeded")
             + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
