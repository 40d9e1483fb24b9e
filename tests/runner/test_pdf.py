"""`statex-bi run --pdf`: a PDF beside each report page with headless Chromium, a clear message without it."""

from __future__ import annotations

import pytest

from statex_bi.runner import pdf

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head>
<body><h1>Weekly review</h1><p>Net revenue €26,064.00</p></body></html>"""


def test_without_chromium_the_run_says_how_to_get_pdfs_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    (tmp_path / "growth.html").write_text(PAGE, encoding="utf-8")
    entries = {"growth": {"html": "growth.html"}}
    problems: list[str] = []
    pdf.write_pdfs(tmp_path, entries, print, problems.append)
    assert problems == [pdf.MISSING]
    assert "apt-get install chromium" in pdf.MISSING and pdf.CHROMIUM_ENV in pdf.MISSING
    assert "pdf" not in entries["growth"] and not (tmp_path / "growth.pdf").exists()


@pytest.mark.browser
def test_each_report_page_is_printed_to_a_pdf_beside_it(tmp_path):
    from pypdf import PdfReader

    if pdf.find_chromium() is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    (tmp_path / "growth.html").write_text(PAGE, encoding="utf-8")
    entries = {"growth": {"html": "growth.html"}, "failed": {"html": None}}
    problems: list[str] = []
    pdf.write_pdfs(tmp_path, entries, lambda line: None, problems.append)
    assert problems == []
    assert entries["growth"]["pdf"] == "growth.pdf" and "pdf" not in entries["failed"]
    text = PdfReader(tmp_path / "growth.pdf").pages[0].extract_text()
    assert "Weekly review" in text and "26,064.00" in text
