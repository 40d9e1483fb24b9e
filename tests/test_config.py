"""Where the suite looks for its warehouse and outputs, whatever the working directory."""

from __future__ import annotations

import pytest

from statex_bi import config
from statex_bi.config import read_yaml
from statex_bi.exceptions import ConfigError, ParamsError


def test_the_default_warehouse_is_under_the_project_root_even_from_notebooks(monkeypatch):
    monkeypatch.delenv("STATEX_BI_DB", raising=False)
    monkeypatch.delenv("STATEX_BI_OUTPUTS", raising=False)
    monkeypatch.chdir(config.NOTEBOOKS_DIR)  # where JupyterLab starts kernels
    assert config.db_path() == config.PROJECT_ROOT / "data" / "statex.duckdb"
    assert config.outputs_dir() == config.PROJECT_ROOT / "outputs"


def test_statex_bi_db_wins_and_a_relative_one_is_taken_from_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STATEX_BI_DB", "mine/w.duckdb")
    assert config.db_path() == tmp_path / "mine" / "w.duckdb"


def test_the_raw_tables_url_is_an_absolute_folder_or_an_object_store_url(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATEX_BI_RAW_URL", raising=False)
    assert config.raw_url() is None  # the raw tables stay in the warehouse file
    for value, url in [("lake", str(tmp_path / "lake")), (f"file://{tmp_path}/lake/", str(tmp_path / "lake")),
                       ("s3://bucket/statex/", "s3://bucket/statex"), ("az://raw/statex", "az://raw/statex")]:
        monkeypatch.setenv("STATEX_BI_RAW_URL", value)
        assert config.raw_url() == url

    monkeypatch.setenv("STATEX_BI_RAW_URL", "https://example.com/lake")
    with pytest.raises(ConfigError, match=r"STATEX_BI_RAW_URL must be a folder or an object-store URL.*https://"):
        config.raw_url()


def test_spark_reads_a_lake_on_s3_through_hadoops_scheme_or_the_clusters_own_url(monkeypatch):
    monkeypatch.delenv("STATEX_BI_SPARK_RAW_URL", raising=False)
    monkeypatch.setenv("STATEX_BI_RAW_URL", "s3://bucket/lake")
    assert config.spark_raw_url() == "s3a://bucket/lake"

    monkeypatch.setenv("STATEX_BI_RAW_URL", "az://raw/lake")
    monkeypatch.setenv("STATEX_BI_SPARK_RAW_URL", "abfss://raw@account.dfs.core.windows.net/lake")
    assert config.spark_raw_url() == "abfss://raw@account.dfs.core.windows.net/lake"

    monkeypatch.delenv("STATEX_BI_RAW_URL")
    assert config.spark_raw_url() is None  # no lake: Spark reads the export or its metastore


def test_malformed_yaml_is_one_line_naming_the_file_and_line(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n  - name: x\n    above: [1, 2\n", encoding="utf-8")
    with pytest.raises(ParamsError) as raised:
        read_yaml(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}, line 4, column 1: not valid YAML")
