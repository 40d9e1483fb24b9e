from __future__ import annotations

import json

import numpy as np
import pytest

from statex_bi import publish
from statex_bi.exceptions import ParamsError, SidecarError


def test_metric_appends_to_the_sidecar_the_runner_names(tmp_path, monkeypatch):
    sidecar = tmp_path / "growth.metrics.jsonl"
    monkeypatch.setenv(publish.SIDECAR_ENV, str(sidecar))
    publish.metric("conversion.signup_rate", np.float64(0.031), unit="fraction", tags={"ci_low": np.float32(0.028)})
    publish.metric("ga4.sessions", np.int64(1200), unit="count", metric_type="COUNTER", source="ga4")
    lines = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert [line["metric_name"] for line in lines] == ["conversion.signup_rate", "ga4.sessions"]
    assert lines[0]["tags"]["ci_low"] == pytest.approx(0.028)
    assert lines[1]["value"] == 1200.0 and lines[1]["metric_type"] == "COUNTER"
    assert publish.read_sidecar(sidecar) == lines


def test_without_a_runner_metric_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(publish.SIDECAR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record = publish.metric("ga4.sessions", 5)
    assert record["value"] == 5.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "3", None, True], ids=str)
def test_values_must_be_finite_numbers(value):
    with pytest.raises(ParamsError, match="finite number"):
        publish.metric("x", value)


def test_metric_type_must_be_in_the_seed_enum():
    with pytest.raises(ParamsError, match="COUNTER, GAUGE, HISTOGRAM, SUMMARY"):
        publish.metric("x", 1, metric_type="RATE")


GOOD = '{"metric_name": "ga4.sessions", "metric_type": "COUNTER", "value": 12, "unit": "count", "tags": {}}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": NaN}', "value nan is not a finite number"),
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": Infinity}', "value inf is not a finite number"),
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": 1e999}', "value inf is not a finite number"),
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": true}', "value True is not a finite number"),
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": "3"}', "value '3' is not a finite number"),
        ('{"metric_name": "x", "metric_type": "RATE", "value": 1}', "metric_type 'RATE' is not one of COUNTER"),
        ('{"metric_type": "GAUGE", "value": 1}', "metric_name None is not a non-empty string"),
        ('{"metric_name": "x", "metric_type": "GAUGE", "value": 1, "tags": [1]}', "tags [1] is not a JSON object"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"metric_name": "x", ', "not JSON"),
    ],
    ids=["nan", "infinity", "overflow", "bool", "string", "unknown type", "no name", "tags", "list", "cut off"],
)
def test_a_bad_sidecar_line_is_refused_naming_file_and_line(tmp_path, line, message):
    sidecar = tmp_path / "growth.metrics.jsonl"
    sidecar.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    with pytest.raises(SidecarError, match="growth.metrics.jsonl, line 3: ") as raised:
        publish.read_sidecar(sidecar)
    assert message in str(raised.value)


def test_a_valid_sidecar_reads_back_as_written(tmp_path):
    sidecar = tmp_path / "growth.metrics.jsonl"
    sidecar.write_text(f"{GOOD}\n{GOOD}\n")
    assert publish.read_sidecar(sidecar) == [json.loads(GOOD)] * 2
