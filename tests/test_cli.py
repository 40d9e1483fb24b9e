"""`statex-bi`'s usage errors: one line naming the flag, exit code 2, never a traceback; helpful --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statex_bi.cli import main
from statex_bi.sources import REGISTRY

STATEX_BI = Path(sys.executable).with_name("statex-bi")


def _usage_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one line on stderr. Returns that line."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "weekly", "--start", "2026-02-30", "--end", "2026-03-01"],
         "argument --start: '2026-02-30' is not a date"),
        (["ingest", "fx", "--start", "2026-03-01", "--end", "2026-13-01"],
         "argument --end: '2026-13-01' is not a date"),
        (["demo", "--end", "yesterday"], "argument --end: 'yesterday' is not a date"),
        (["run", "weekly", "--start", "2026-03-01"], "argument --start: needs --end"),
        (["ingest", "fx", "--start", "2026-03-01"], "argument --start: needs --end"),
        (["demo", "--start", "2026-03-01"], "argument --start: needs --end"),
        (["run", "weekly", "--start", "2026-03-09", "--end", "2026-03-01"],
         "argument --start: 2026-03-09 is after --end"),
        (["demo", "--start", "2026-03-09", "--end", "2026-03-01"], "argument --start: 2026-03-09 is after --end"),
        (["run", "weekly", "--jobs", "0"], "argument --jobs: 0 is below 1"),
        (["run", "weekly", "--jobs", "-2"], "argument --jobs: -2 is below 1"),
        (["run", "weekly", "--jobs", "two"], "argument --jobs: 'two' is not a whole number"),
        (["ingest", "stripes"], "argument SOURCE: invalid choice: 'stripes'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_usage_errors_are_one_line_naming_the_flag(capsys, argv, expected):
    line = _usage_error(capsys, argv)
    assert line.startswith("statex-bi ") and expected in line, line


@pytest.mark.parametrize("source", list(REGISTRY))
def test_start_after_end_is_refused_for_every_source(capsys, db_file, source):
    line = _usage_error(capsys, ["ingest", source, "--start", "2026-03-09", "--end", "2026-03-01"])
    assert "argument --start: 2026-03-09 is after --end 2026-03-01" in line
    assert not db_file.exists(), "nothing was opened"


def test_an_impossible_date_in_a_params_file_is_a_usage_error_naming_the_file(capsys, tmp_path, db_file):
    (tmp_path / "notebooks").mkdir()
    params = tmp_path / "bad.yaml"
    params.write_text("notebooks: {}\nstart: 2026-13-01\nend: 2026-12-31\n")
    assert main(["run", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"statex-bi: error: {params}: key 'start': '2026-13-01' is not a date (YYYY-MM-DD)"


def _help(*argv: str) -> str:
    done = subprocess.run([str(STATEX_BI), *argv, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # argparse wraps lines at the terminal width


def test_every_subcommand_help_describes_it_and_shows_defaults():
    top = _help()
    for command in ("run", "ingest", "demo", "build"):
        assert command in top
    assert "Statex BI and cost reports" in _help()
    run = _help("run")
    assert "Run the report notebooks a params file lists" in run
    assert "(default: 0.0)" in run  # --wait
    assert "Exit code 0 when every notebook succeeded" in run
    demo = _help("demo")
    assert "rebuilt from scratch" in demo and "(default: 7)" in demo and "(default: 1.0)" in demo
    assert "Build the SQL models" in _help("build")


def test_ingest_help_lists_every_source():
    text = _help("ingest")
    assert "Exit code 0 when every source loaded, 1 when one failed" in text
    assert f"Sources: {', '.join(REGISTRY)}" in text


def test_build_target_spark_builds_on_spark(monkeypatch, db_file):
    from statex_bi.transform import build as project
    from statex_bi.transform import spark

    calls = []
    monkeypatch.setattr(spark, "build", lambda wait: calls.append(("spark", wait)))
    monkeypatch.setattr(project, "build", lambda wait, select: calls.append(("duckdb", wait, select)))

    assert main(["build", "--target", "spark", "--wait", "3"]) == 0
    assert main(["build"]) == 0
    assert main(["build", "--select", "+payments_eur", "stg_fx__eur_reference_rates"]) == 0
    assert calls == [("spark", 3.0), ("duckdb", 0.0, None),
                     ("duckdb", 0.0, ["+payments_eur", "stg_fx__eur_reference_rates"])]


def test_build_select_is_refused_on_spark(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["build", "--target", "spark", "--select", "+payments_eur"])
    assert refused.value.code == 2
    assert "only the duckdb target builds a selection" in capsys.readouterr().err
