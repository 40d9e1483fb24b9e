"""The dbt project as `statex-bi build` runs it: layers, empty typed models for sources not loaded yet,
the sources' declared columns, and the state folder next to the warehouse."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest
import yaml
from connector_columns import connector_columns
from demo_window import SMALL_DEMO_END, SMALL_DEMO_START
from warehouse_copies import copy_with_state

from statex_bi import warehouse
from statex_bi.cli import main
from statex_bi.config import MODELS_DIR
from statex_bi.demo.ai import simulate_ai, write_calls_jsonl
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import WarehouseLockedError
from statex_bi.ingest import ingest
from statex_bi.kpis import data_health as health
from statex_bi.sources.contract import IngestRequest
from statex_bi.transform import build as project

LAYERS = {"staging": "VIEW", "core": "VIEW", "marts": "BASE TABLE"}


# Another writer (an ingest) holding the warehouse for argv[2] seconds.
HOLD_WAREHOUSE = "import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\n" \
    "time.sleep(float(sys.argv[2]))"


def _shipped_models() -> dict[str, str]:
    """layer.name -> layer of every .sql model in the package."""
    return {f"{layer}.{path.stem}": layer for layer in LAYERS for path in (MODELS_DIR / layer).glob("*.sql")}


@pytest.fixture(scope="module")
def empty_build(built_empty):
    """`statex-bi build` on a warehouse where no source is loaded (the session's, tests/conftest.py)."""
    db, result = built_empty
    con = duckdb.connect(str(db), read_only=True)
    yield db, result, con
    con.close()


def test_every_model_builds_empty_and_typed_when_nothing_is_loaded(empty_build):
    _, result, con = empty_build
    kinds = dict(con.execute(
        "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables "
        "WHERE table_schema IN ('staging', 'core', 'marts')").fetchall())

    assert kinds == {model: LAYERS[layer] for model, layer in _shipped_models().items()}
    assert result.models == len(kinds)
    assert sorted(result.empty_sources) == sorted(
        f"{source}.{table}" for source, tables in connector_columns().items() for table in tables)
    assert con.execute("SELECT count(*) FROM marts.payments_eur").fetchall() == [(0,)]
    # typed as the connector declares them, although raw_stripe does not exist
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = 'stg_stripe__charges'").fetchall())
    assert (types["amount_minor"], types["created_at"], types["is_paid"]) == ("BIGINT", "TIMESTAMP", "BOOLEAN")


def test_dbt_state_goes_next_to_the_warehouse_not_into_the_package(empty_build):
    db, _, _ = empty_build

    assert (db.parent / ".warehouse.dbt" / "target" / "run_results.json").is_file()
    assert (db.parent / ".warehouse.dbt" / "logs" / "dbt.log").is_file()
    assert not (MODELS_DIR / "target").exists() and not (MODELS_DIR / "logs").exists()
    assert not (MODELS_DIR / ".user.yml").exists()


def test_sources_declare_the_columns_each_connector_declares():
    declared = {}
    for (source, table), entry in project.declared_sources().items():
        assert entry["schema"] == f"raw_{source}"
        assert entry["file"] == f"_{source}__sources.yml"
        assert entry.get("loaded_at_field") in {c["name"] for c in entry["columns"]}, (source, table)
        declared.setdefault(source, {})[table] = {c["name"]: c.get("data_type") for c in entry["columns"]}

    assert declared == connector_columns()


def test_yml_beside_each_model_states_its_grain():
    for model in _shipped_models():
        layer, name = model.split(".")
        spec = yaml.safe_load((MODELS_DIR / layer / f"{name}.yml").read_text())
        (entry,) = [m for m in spec["models"] if m["name"] == name]
        assert "One row per" in entry["description"], model


def test_build_command_runs_dbt_and_fails_on_a_broken_test(db_file, capsys, empty_build):
    with duckdb.connect(str(db_file)) as con:
        con.execute("CREATE SCHEMA raw_fx")
        con.execute("CREATE TABLE raw_fx.eur_reference_rates (date DATE, currency VARCHAR, rate DOUBLE)")
        con.execute("INSERT INTO raw_fx.eur_reference_rates VALUES ('2026-03-02', 'USD', 1.05), "
                    "('2026-03-02', 'GBP', -0.8)")
        # a bill in euros: a test of severity warn, which does not stop the build
        con.execute("CREATE SCHEMA raw_openai")
        con.execute("CREATE TABLE raw_openai.costs (bucket_start TIMESTAMP, bucket_end TIMESTAMP, line_item VARCHAR, "
                    "project_id VARCHAR, amount DOUBLE, currency VARCHAR)")
        con.execute("INSERT INTO raw_openai.costs VALUES ('2026-03-02', '2026-03-03', 'gpt, input', 'p', 1.5, 'eur')")

    assert main(["build"]) == 2

    # the project was parsed for another warehouse of the same name (empty_build): not again
    assert "Starting full parse" not in (db_file.parent / ".warehouse.dbt" / "logs" / "dbt.log").read_text()
    err = capsys.readouterr().err
    assert "expression_is_true_stg_fx__eur_reference_rates_rate_0" in err
    assert "staging.stg_fx__eur_reference_rates" in err
    assert "currency='GBP'" in err and "rate=-0.8" in err
    with duckdb.connect(str(db_file), read_only=True) as con:
        shown = health.test_warnings(con)
    assert set(zip(shown["model"], shown["status"], shown["failing_rows"], strict=True)) == {
        ("staging.stg_fx__eur_reference_rates", "fail", 1), ("staging.stg_openai__costs", "warn", 1),
        ("marts.openai_billing_daily", "warn", 1)}


# `dbt ls` in a new process on the warehouse argv[1]; prints whether dbt parsed the project to list it.
LIST_MODELS = "import sys\nfrom pathlib import Path\nfrom statex_bi.transform import build\n" \
    "db = Path(sys.argv[1])\nassert build.invoke(['ls', '--resource-type', 'model'], db).success\n" \
    "print('parsed' if 'Starting full parse' in (build.state_dir(db) / 'logs' / 'dbt.log').read_text() else 'reused')"


def test_a_new_process_on_a_new_warehouse_reuses_the_parse_of_the_cache_folder(tmp_path, empty_build, cache_folder):
    """empty_build's build parsed the project (for warehouses named `warehouse`) and kept the parse in the
    session's cache folder; a report run or a cron ingest is another process, on any warehouse of that name: it
    reads the parse from there."""
    listed = subprocess.run([sys.executable, "-c", LIST_MODELS, str(tmp_path / "warehouse.duckdb")],
                            capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["reused"]
    assert list((cache_folder / "dbt-parse").glob("*.msgpack"))


def test_a_damaged_parse_in_the_cache_folder_is_parsed_again_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("STATEX_BI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(project, "_PARSED", {})
    db = tmp_path / "warehouse.duckdb"
    cached = project._cached_parse(project._parse_key(db, "duckdb"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x93 cut short")

    listed = subprocess.run([sys.executable, "-c", LIST_MODELS, str(db)], capture_output=True, text=True, check=True)

    assert listed.stdout.split() == ["parsed"]
    assert project._parsed_manifest(project._parse_key(db, "duckdb")) is not None  # the new parse, readable


def test_docs_generation_waits_for_a_warehouse_another_process_holds(tmp_path, empty_build):
    """`run --wait` covers the lineage page too: the first run after a build generates dbt's docs, which
    open the warehouse; a writer holding it meanwhile (an ingest) is waited for, not a failed run."""
    db = copy_with_state(empty_build[0], tmp_path)
    (project.state_dir(db) / "target" / project.DOCS_PAGE).unlink(missing_ok=True)  # as after a build
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WAREHOUSE, str(db), "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WarehouseLockedError):
            project.publish_docs(db, tmp_path / "refused")
        page = project.publish_docs(db, tmp_path / "lineage", wait=60)
    finally:
        holder.kill()
        holder.wait()
    assert page == tmp_path / "lineage" / "index.html" and "stg_stripe__charges" in page.read_text()


def _models_reached(manifest: dict, node: str, edges: str) -> set[str]:
    """The models downstream (`edges="child_map"`) or upstream (`"parent_map"`) of `node` in dbt's manifest."""
    graph, seen = manifest[edges], set()
    stack = [node]
    while stack:
        for reached in graph[stack.pop()]:
            if reached not in seen:
                seen.add(reached)
                stack.append(reached)
    return {n for n in seen if n.startswith("model.")}


def test_a_selected_build_builds_only_its_nodes_and_keeps_the_record_of_the_last_whole_build(demo_copy, capsys):
    """`build --select` is for a model being worked on: what it leaves out is not built, so the next ingest must
    still compare the project with the last whole build, not with this one."""
    record = project.last_build_dir(demo_copy) / "manifest.json"
    whole = record.read_bytes()

    assert main(["build", "--select", "+payments_eur"]) == 0

    target = project.state_dir(demo_copy) / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    ran = {r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]}
    wanted = _models_reached(manifest, "model.statex_bi.payments_eur", "parent_map") | {"model.statex_bi.payments_eur"}
    assert {n for n in ran if n.startswith("model.")} == wanted
    assert any(n.startswith("test.") for n in ran)
    assert record.read_bytes() == whole
    assert f"models: {len(wanted)} built" in capsys.readouterr().err


def test_a_selected_build_of_a_warehouse_never_built_leaves_no_record_so_the_next_ingest_builds_everything(db_file):
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_fx; CREATE TABLE raw_fx.eur_reference_rates (date DATE, currency VARCHAR, "
                    "rate DOUBLE); INSERT INTO raw_fx.eur_reference_rates VALUES ('2026-03-02', 'USD', 1.05)")

    result = project.build(db_file, progress=lambda _: None, select=["stg_fx__eur_reference_rates"])

    assert (result.models, result.tests > 0) == (1, True)
    assert not project.last_build_dir(db_file).exists()


def test_a_selection_that_matches_nothing_is_an_error_naming_it(demo_copy, capsys):
    assert main(["build", "--select", "marts.no_such_mart"]) == 2
    assert "--select marts.no_such_mart matches no model or test" in capsys.readouterr().err
    assert (project.last_build_dir(demo_copy) / "manifest.json").is_file()


def test_an_ingest_builds_and_tests_only_the_models_downstream_of_the_sources_it_loaded_rows_into(demo_copy, tmp_path):
    config = WorldConfig(SMALL_DEMO_START, SMALL_DEMO_END, seed=11)  # calls the demo's seed did not make
    calls = write_calls_jsonl(simulate_ai(config, World(config).growth.prototype_requests).calls[:20],
                              tmp_path / "calls.jsonl")
    with duckdb.connect(str(demo_copy), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM core.ai_calls").fetchone()[0]
    messages: list[str] = []

    ingest(["ai-calls"], IngestRequest(file=calls, progress=messages.append), db=demo_copy, kind=warehouse.DEMO)

    target = project.state_dir(demo_copy) / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    ran = {r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]}
    models = {n for n in manifest["nodes"] if n.startswith("model.")}
    downstream = _models_reached(manifest, "source.statex_bi.ai_calls.calls", "child_map")
    assert {n for n in ran if n.startswith("model.")} == downstream
    assert len(downstream) < len(models) / 2
    assert any(m.startswith(f"models: {len(downstream)} built") and "(downstream of ai_calls)" in m for m in messages)
    tests = {n for n in manifest["nodes"] if n.startswith("test.")}
    with duckdb.connect(str(demo_copy), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.ai_calls").fetchone()[0] == before + 20
        # every test's latest result is kept, those of the tests this build did not run included
        recorded = con.execute(f"SELECT count(*), count(DISTINCT test) FROM {project.TEST_RESULTS_TABLE}").fetchone()
    assert recorded == (len(tests), len(tests)) and len(ran & tests) < len(tests)
