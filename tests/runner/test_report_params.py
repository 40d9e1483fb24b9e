"""Params files are validated before anything runs, with errors naming the file and the key."""

from __future__ import annotations

from datetime import date

import nbformat
import pytest
import yaml
from reportkit import PARAMETERS_CELL, write_notebook, write_params

from statex_bi.config import PARAMS_DIR
from statex_bi.exceptions import ParamsError, SecretParameterError
from statex_bi.periods import Period
from statex_bi.runner import params as report_params
from statex_bi.runner.run import run_params
from statex_bi.secrets import refuse_secret_parameters

DECLARED = {
    "health": PARAMETERS_CELL + "\nfreshness_hours = 24\nreporting_currency = 'USD'\nsource = {}\nheader = ''",
    "growth": PARAMETERS_CELL + "\nkey_events: list = []  # GA4 key events\nsince = ''\nmax_tokens = 1",
}


@pytest.fixture
def folder(tmp_path):
    for stem, parameters in DECLARED.items():
        write_notebook(tmp_path / "notebooks", stem, ["print(1)"], parameters=parameters)
    return tmp_path


def _params(folder, text: str):
    path = folder / "p.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_gives_each_notebook_defaults_own_and_runner_parameters(folder):
    path = write_params(
        folder / "weekly.yaml",
        {"health": {"freshness_hours": 48}, "growth": {"key_events": ["sign_up"], "since": date(2026, 1, 5)}},
        defaults={"reporting_currency": "EUR", "freshness_hours": 24},
        timeouts={"cell": 30},
    )
    spec = report_params.load(path)
    assert (spec.name, spec.title, spec.cell_timeout, spec.notebook_timeout) == ("weekly", "Test review", 30.0, 900.0)
    period = spec.period(today=date(2026, 11, 27))
    assert period == Period(date(2026, 11, 16), date(2026, 11, 22))
    assert spec.parameters("health", period, "r1") == {
        "reporting_currency": "EUR",
        "freshness_hours": 48,
        "period_start": "2026-11-16",
        "period_end": "2026-11-22",
        "run_id": "r1",
    }
    growth = spec.parameters("growth", period, "r1")
    assert growth["since"] == "2026-01-05", "YAML dates become ISO strings"
    assert "reporting_currency" not in growth, "a default goes only to the notebooks that define it"
    assert spec.select(["growth"]) == ["growth"]
    spec.check_declared(["health", "growth"])


@pytest.mark.parametrize(
    ("notebooks", "defaults", "message"),
    [
        ({"health": {"freshness_hour": 12}}, {}, r"key 'notebooks.health.freshness_hour': the parameters cell of "
                                                 r".*health\.ipynb does not define 'freshness_hour' \(it defines: "),
        ({"health": None}, {"budget_usd": 10}, r"key 'defaults.budget_usd': no notebook's parameters cell defines it"),
        ({"bare": None}, {}, r"key 'notebooks.bare': .*bare\.ipynb has no code cell tagged 'parameters'"),
        ({"no_period": None}, {}, r"key 'notebooks.no_period': .* does not define 'period_start'"),
    ],
    ids=["a typo in a notebook's parameter", "a default no notebook defines", "no parameters cell",
         "no period parameters"],
)
def test_parameters_a_notebook_does_not_define_are_refused_before_anything_runs(
    db_file, folder, notebooks, defaults, message
):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbformat.write(nb, folder / "notebooks" / "bare.ipynb")
    write_notebook(folder / "notebooks", "no_period", ["print(1)"], parameters="min_amount = 0")
    path = write_params(folder / "p.yaml", notebooks, **({"defaults": defaults} if defaults else {}))
    with pytest.raises(ParamsError, match=message) as raised:
        run_params(path)
    assert str(path) in str(raised.value)
    assert not db_file.exists(), "refused before the warehouse was opened"


def test_an_impossible_date_in_a_params_file_names_the_file_and_key(folder):
    path = _params(folder, "notebooks_dir: notebooks\nnotebooks: {health: }\nstart: 2026-13-01\nend: 2026-12-31\n")
    with pytest.raises(ParamsError, match=r"p\.yaml: key 'start': '2026-13-01' is not a date \(YYYY-MM-DD\)"):
        report_params.load(path)


def test_start_and_end_override_the_period_each_on_its_own(folder):
    spec = report_params.load(write_params(folder / "p.yaml", {"health": None}, start="2026-03-01", end="2026-03-31"))
    assert spec.period() == Period(date(2026, 3, 1), date(2026, 3, 31))
    assert spec.period(start=date(2026, 3, 10)) == Period(date(2026, 3, 10), date(2026, 3, 31))
    assert spec.period(date(2026, 4, 1), date(2026, 4, 2)) == Period(date(2026, 4, 1), date(2026, 4, 2))
    with pytest.raises(ParamsError, match="before its start"):
        spec.period(end=date(2026, 2, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notebooks: {health: }\nschedule: daily\n", r"unknown key 'schedule'"),
        ("notebooks: {}\n", r"key 'notebooks': must map at least one notebook"),
        ("notebooks: {missing: }\n", r"key 'notebooks.missing': no notebook .*missing\.ipynb"),
        ("notebooks: {health: }\ntimeouts: {cell: -1}\n", r"key 'timeouts.cell': must be a positive number"),
        ("notebooks: {health: }\ntimeouts: {kernel: 3}\n", r"key 'timeouts.kernel': unknown"),
        ("notebooks: {health: }\nperiod: next week\n", r"key 'period': unknown period 'next week'"),
        ("notebooks: {health: }\nperiod: yesterday\nstart: 2026-01-01\nend: 2026-01-02\n", r"either 'period'"),
        ("notebooks: {health: }\nstart: 2026-01-01\n", r"key 'end': 'start' and 'end' go together"),
        ("notebooks: {health: }\nstart: 2026-01-05\nend: 2026-01-01\n", r"key 'end': 2026-01-01 is before start"),
        ("notebooks: {health: {run_id: x}}\n", r"key 'notebooks.health.run_id': is set by the runner"),
        ("notebooks: {health: {2x: 1}}\n", r"key 'notebooks.health.2x': a parameter name must be a Python identifier"),
        ("notebooks: [health]\n", r"key 'notebooks': must map"),
        ("notebooks: {health: }\n  bad: [\n", r"not valid YAML"),
    ],
    ids=lambda v: v[:40],
)
def test_invalid_files_are_refused_naming_file_and_key(folder, text, message):
    path = _params(folder, "notebooks_dir: notebooks\n" + text)
    with pytest.raises(ParamsError, match=message) as raised:
        report_params.load(path)
    assert str(path) in str(raised.value)


def test_only_names_must_be_notebooks_of_the_file(folder):
    spec = report_params.load(write_params(folder / "p.yaml", {"health": None, "growth": None}))
    expected = r"--only nope: not a notebook of .*p\.yaml; its notebooks are: health, growth"
    with pytest.raises(ParamsError, match=expected):
        spec.select(["nope"])


def test_names_resolve_under_params_and_unknown_names_list_the_known_ones():
    assert report_params.find("weekly") == PARAMS_DIR / "weekly.yaml"
    with pytest.raises(ParamsError, match=r"no params file 'nightly'.*known names: .*weekly"):
        report_params.find("nightly")


def test_the_projects_params_files_are_valid():
    for path in sorted(PARAMS_DIR.glob("*.yaml")):
        if "notebooks" not in yaml.safe_load(path.read_text()):
            continue  # alert rules, targets and claims sit beside the params files (tests/alerts checks them)
        try:
            report_params.load(path)
        except ParamsError as exc:
            if "no notebook" not in str(exc):  # notebooks arrive issue by issue; the rest must validate
                raise


@pytest.mark.parametrize(
    ("own", "where"),
    [
        ({"defaults": {"api_token": "abc"}}, "defaults"),
        ({"notebooks": {"health": {"stripe_api_key": "sk_test_x"}}}, "notebooks.health"),
        ({"notebooks": {"health": {"source": {"password": "pw"}}}}, "notebooks.health.source"),
        ({"notebooks": {"health": {"header": "Bearer s3cr3t-value-123"}}}, "$STATEX_TEST_SECRET"),
        ({"notebooks": {"health": {"feeds": [{"name": "a"}, {"name": "b", "auth": {"token": "t"}}]}}},
         "notebooks.health.feeds[1].auth"),
        ({"defaults": {"feeds": [[{"client_secret": "c"}]]}}, "defaults.feeds[0][0]"),
    ],
    ids=["name in defaults", "name in a notebook", "nested name", "value of a secret variable",
         "name in a list of mappings", "name in a list of lists"],
)
def test_secret_parameters_are_refused_before_anything_runs(db_file, folder, monkeypatch, own, where):
    monkeypatch.setenv("STATEX_TEST_SECRET", "s3cr3t-value-123")
    data = {"notebooks_dir": "notebooks", "period": "yesterday", "notebooks": {"health": None}, **own}
    path = _params(folder, yaml.safe_dump(data))
    with pytest.raises(SecretParameterError, match="never passed as parameters") as raised:
        run_params(path)
    assert where in str(raised.value) and str(path) in str(raised.value)
    assert "s3cr3t-value-123" not in str(raised.value)
    assert not db_file.exists() and not (db_file.parent / "outputs").exists()


def test_parameters_that_only_sound_like_secrets_are_allowed(folder):
    path = write_params(folder / "p.yaml", {"growth": {"key_events": ["sign_up"], "max_tokens": 5}})
    refuse_secret_parameters(report_params.load(path).parameter_sections(), {"STRIPE_API_KEY": "sk_test_123456"})
