"""A secret scan with no gaps: every escape a value takes, its first characters, every file a run writes."""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from reportkit import write_notebook, write_params

from statex_bi.config import secret_env_values
from statex_bi.runner.run import run_params
from statex_bi.secrets import PREFIX_CHARS, Leak, redact, scan
from statex_bi.transform import build as project

# Its first 12 characters hold a backslash, both quotes, <, &, >, a non-ASCII letter and '/':
# every escape below writes them differently.
SECRET = "tok\\'<&>\"é/+ 9f8e7d6c5b4a3210-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
ENV = {"STATEX_SCAN_TOKEN": SECRET}


@pytest.mark.parametrize(
    "written",
    [
        SECRET,
        html.escape(SECRET),
        html.escape(SECRET, quote=False),
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        repr(SECRET),
        repr({"token": SECRET}),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(html.escape(repr(SECRET))),  # a repr shown in HTML, saved in a notebook
        html.escape(quote(SECRET, safe="")),  # a URL in an HTML attribute
        SECRET[:PREFIX_CHARS] + "...",  # a DataFrame cell cut short
        html.escape(SECRET[:30]) + "&hellip;",
        json.dumps(repr(SECRET[:PREFIX_CHARS + 3])),
    ],
    ids=[
        "raw", "html", "html text", "json", "json utf-8", "repr", "repr in a dict", "url", "url path", "url query",
        "json of html of repr", "html of url", "first 12 characters", "html prefix", "json of repr of a prefix",
    ],
)
def test_the_scan_finds_a_secret_in_every_form_it_is_written(tmp_path, written):
    page = tmp_path / "page.html"
    page.write_text(f"<p>before {written} after</p>", encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text(f"before {SECRET[: PREFIX_CHARS - 1]} after", encoding="utf-8")
    leaks = scan([page, clean], ENV)
    assert [(leak.path, leak.variable) for leak in leaks] == [(page, "STATEX_SCAN_TOKEN")]
    assert SECRET[:PREFIX_CHARS] not in redact(f"error: {written}", ENV)


# Each notebook writes the secret in one form the old scan missed; `own_files` writes files itself.
FORMS = {
    "as_repr": ["import os", "print(repr({'token': os.environ['STATEX_SCAN_TOKEN']}))"],
    "as_url": ["import os, urllib.parse", "print(urllib.parse.quote(os.environ['STATEX_SCAN_TOKEN'], safe=''))"],
    "truncated": [
        "import os, pandas as pd",
        "pd.DataFrame({'token': [os.environ['STATEX_SCAN_TOKEN']], 'n': [1]})",
    ],
    "own_files": [
        "import os, pathlib\nfolder = pathlib.Path(os.environ['STATEX_BI_REPORT_FILES'])",
        "(folder / 'clean.csv').write_text('day,orders\\n2026-03-02,4\\n')\n"
        "(folder / 'nested').mkdir()\n"
        "(folder / 'nested' / 'dump.txt').write_text(os.environ['STATEX_SCAN_TOKEN'][:20])",
    ],
    "clean": ["print('nothing to hide')"],
}


def _lineage_quoting_the_secret(db: Path, folder: Path, wait: float = 0.0) -> Path:
    """Stands in for the dbt docs page (project.publish_docs), here quoting the secret as docs of a
    profile reading it with env_var() would."""
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    page.write_text(f"<html><body><pre>{html.escape(SECRET)}</pre></body></html>", encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def scanned_run(tmp_path_factory) -> tuple[int, Path, dict]:
    root = tmp_path_factory.mktemp("scanned")
    for stem, cells in FORMS.items():
        write_notebook(root / "notebooks", stem, cells)
    params = write_params(root / "scan.yaml", dict.fromkeys(FORMS), start="2026-03-02", end="2026-03-08")
    outputs = root / "outputs"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATEX_BI_DB", str(root / "warehouse.duckdb"))
        patch.setenv("STATEX_BI_OUTPUTS", str(outputs))
        patch.setenv("STATEX_SCAN_TOKEN", SECRET)
        patch.delenv("SENTRY_DSN", raising=False)
        patch.setattr(project, "publish_docs", _lineage_quoting_the_secret)
        code = run_params(params, jobs=2, run_id="scan", quiet=True)
    return code, outputs, json.loads((outputs / "scan" / "manifest.json").read_text())


def test_no_published_file_holds_the_secret_in_any_form(scanned_run):
    code, outputs, manifest = scanned_run
    assert code == 1
    published = [p for p in outputs.rglob("*") if p.is_file()]
    assert published
    for path in published:
        content = path.read_text(encoding="utf-8", errors="replace")
        assert not [n for n in (SECRET[:PREFIX_CHARS], quote(SECRET[:PREFIX_CHARS], safe="")) if n in content], path
    leaked = {(leak["notebook"], leak["file"]) for leak in manifest["secret_leaks"]}
    assert leaked == {
        ("as_repr", "as_repr.ipynb"), ("as_repr", "as_repr.html"),
        ("as_url", "as_url.ipynb"), ("as_url", "as_url.html"),
        ("truncated", "truncated.ipynb"), ("truncated", "truncated.html"),
        ("own_files", "own_files_files/nested/dump.txt"),
        (None, "lineage/index.html"),  # the lineage page is scanned like the reports
    }
    assert manifest["lineage"] is None
    statuses = {stem: entry["status"] for stem, entry in manifest["notebooks"].items()}
    assert statuses == {stem: "succeeded" if stem == "clean" else "failed" for stem in FORMS}


def test_files_a_notebook_writes_itself_are_scanned_then_published_beside_its_report(scanned_run):
    _, outputs, manifest = scanned_run
    entry = manifest["notebooks"]["own_files"]
    assert entry["files"] == ["own_files_files/clean.csv"]
    assert (outputs / "scan" / "own_files_files" / "clean.csv").read_text() == "day,orders\n2026-03-02,4\n"
    assert not (outputs / "scan" / "own_files_files" / "nested").exists()
    assert entry["html"] == "own_files.html" and entry["error"]["ename"] == "SecretLeakError"
    assert "own_files_files/nested/dump.txt" in entry["error"]["message"]


def test_a_credentials_file_path_is_no_secret_to_search_for(db_file, tmp_path, monkeypatch):
    # Its first characters are those of the notebooks' own paths, which every executed notebook records.
    key_file = tmp_path / "service-account.json"
    key_file.write_text('{"type": "service_account"}')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    write_notebook(tmp_path / "notebooks", "paths", ["import os\nprint(os.getcwd())"])
    params = write_params(tmp_path / "paths.yaml", {"paths": None})
    assert run_params(params, run_id="paths", quiet=True) == 0
    manifest = json.loads((db_file.parent / "outputs" / "paths" / "manifest.json").read_text())
    assert manifest["secret_leaks"] == [] and manifest["notebooks"]["paths"]["status"] == "succeeded"
    assert str(tmp_path)[:PREFIX_CHARS] in (db_file.parent / "outputs" / "paths" / "paths.ipynb").read_text()


def test_the_scan_looks_for_a_webhook_url_by_the_path_that_grants_access(tmp_path, monkeypatch):
    url = "https://hooks.slack.com/services/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"
    monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", url)
    quoted = tmp_path / "quoted.html"  # an HTTP library's error text, printed by a notebook
    quoted.write_text(f"<pre>Max retries exceeded with url: {url.removeprefix('https://hooks.slack.com')}</pre>")
    clean = tmp_path / "clean.html"
    clean.write_text("<p>Alerts go to Slack (https://hooks.slack.com).</p>")
    assert scan([quoted, clean], secret_env_values()) == [Leak(quoted, "STATEX_BI_SLACK_WEBHOOK_URL")]
