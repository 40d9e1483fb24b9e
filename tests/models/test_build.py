from __future__ import annotations

import pytest

from statex_bi import warehouse
from statex_bi.exceptions import ModelError
from statex_bi.models.build import build_all, discover


def _write(root, layer, name, sql):
    (root / layer).mkdir(parents=True, exist_ok=True)
    (root / layer / f"{name}.sql").write_text(sql)


@pytest.fixture
def con(db_file):
    with warehouse.writer(db_file) as connection:
        connection.execute("CREATE SCHEMA raw_shop")
        connection.execute("CREATE TABLE raw_shop.orders AS SELECT * FROM (VALUES (1, 250), (2, 100)) t(id, cents)")
        yield connection


def test_models_build_in_dependency_order_and_skip_what_is_not_loaded(tmp_path, con):
    root = tmp_path / "models"
    # The mart is discovered before the staging model it reads (alphabetically and by layer order
    # it would come last anyway): the order must come from the SQL's references.
    _write(root, "core", "a_orders", "select id, cents / 100.0 as amount from staging.stg_shop__orders")
    _write(root, "staging", "stg_shop__orders", "select id, cents from raw_shop.orders")
    _write(root, "marts", "revenue", "with o as (select * from core.a_orders) select sum(amount) as total from o")
    _write(root, "staging", "stg_other__things", "select * from raw_other.things")
    _write(root, "marts", "things_summary", "select count(*) as n from staging.stg_other__things")

    status = build_all(con, root)

    assert status["staging.stg_shop__orders"] == "built"
    assert status["marts.revenue"] == "built"
    assert status["staging.stg_other__things"].startswith("skipped: raw_other.things")
    assert status["marts.things_summary"].startswith("skipped: staging.stg_other__things")
    assert con.execute("SELECT total FROM marts.revenue").fetchone()[0] == pytest.approx(3.5)
    kinds = dict(con.execute(
        "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables "
        "WHERE table_schema IN ('staging', 'core', 'marts')"
    ).fetchall())
    assert kinds == {"staging.stg_shop__orders": "VIEW", "core.a_orders": "VIEW", "marts.revenue": "BASE TABLE"}


def test_rebuild_is_idempotent_and_follows_new_data(tmp_path, con):
    root = tmp_path / "models"
    _write(root, "marts", "order_count", "select count(*) as n from raw_shop.orders")
    build_all(con, root)
    con.execute("INSERT INTO raw_shop.orders VALUES (3, 5)")
    build_all(con, root)
    assert con.execute("SELECT n FROM marts.order_count").fetchone()[0] == 3


def test_a_model_that_moves_from_view_to_table_is_replaced(tmp_path, con):
    root = tmp_path / "models"
    _write(root, "core", "orders", "select * from raw_shop.orders")
    build_all(con, root)
    (root / "core" / "orders.sql").unlink()
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    # Same name, now a table in another layer, and a table where the view was.
    _write(root, "marts", "orders", "select * from raw_shop.orders")
    con.execute("DROP VIEW core.orders")
    con.execute("CREATE TABLE core.orders AS SELECT 1 AS x")
    _write(root, "core", "orders", "select id from raw_shop.orders")
    status = build_all(con, root)
    assert status == {"core.orders": "built", "marts.orders": "built"}
    assert con.execute("SELECT count(*) FROM core.orders").fetchone()[0] == 2


def test_unqualified_tables_and_cycles_are_refused(tmp_path):
    root = tmp_path / "models"
    _write(root, "staging", "bad", "select * from orders")
    with pytest.raises(ModelError, match="schema-qualified"):
        discover(root)


def test_cycles_are_refused(tmp_path, con):
    root = tmp_path / "models"
    _write(root, "core", "a", "select * from core.b")
    _write(root, "core", "b", "select * from core.a")
    with pytest.raises(ModelError, match="cycle"):
        build_all(con, root)


def test_a_broken_model_names_its_file(tmp_path, con):
    root = tmp_path / "models"
    _write(root, "staging", "stg_shop__broken", "select no_such_column from raw_shop.orders")
    with pytest.raises(ModelError, match="stg_shop__broken.sql"):
        build_all(con, root)


def test_the_shipped_models_parse():
    for model in discover().values():
        assert model.depends_on, f"{model.qualified} reads no table"
