"""Each of the plan's numbers has one home (params/targets.yaml); alerts, claims and parameter sets follow it."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from statex_bi import targets
from statex_bi.alerts import rules
from statex_bi.config import PARAMS_DIR
from statex_bi.exceptions import ParamsError
from statex_bi.kpis import executive_summary
from statex_bi.periods import Period
from statex_bi.runner import params


@pytest.fixture
def moved_targets(tmp_path, monkeypatch):
    """params/targets.yaml with every target's value multiplied by 3."""
    data = yaml.safe_load((PARAMS_DIR / "targets.yaml").read_text(encoding="utf-8"))
    for entry in data["values"].values():
        entry["value"] = entry["value"] * 3
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setattr(targets, "TARGETS_FILE", path)
    return targets.values(path)


def test_moving_a_target_moves_the_alert_rules_that_name_it(moved_targets):
    config = rules.load(PARAMS_DIR / "alerts.yaml")
    by_name = {rule.name: rule for rule in config.rules}
    assert by_name["api_p95_over_target"].above == moved_targets["api_p95_ms"]
    assert by_name["api_error_rate"].above == moved_targets["api_error_rate"]
    assert by_name["lcp_over_target"].above == moved_targets["lcp_p75_ms"]
    assert by_name["test_coverage_floor"].below == moved_targets["line_coverage_pct"]


@pytest.mark.parametrize("name", ["weekly", "monthly"])
def test_moving_a_target_moves_the_parameter_sets(moved_targets, name):
    spec = params.load(name)
    performance = spec.parameters("web_api_performance", Period(date(2026, 11, 23), date(2026, 11, 29)), run_id="")
    assert performance["p95_target_ms"] == moved_targets["api_p95_ms"]
    assert performance["max_error_rate"] == moved_targets["api_error_rate"]
    tests = spec.parameters("test_productivity", Period(date(2026, 11, 23), date(2026, 11, 29)), run_id="")
    assert tests["claimed_speedup"] == moved_targets["vitest_speedup"]


def test_moving_a_target_moves_the_claims_and_the_scorecard(moved_targets):
    claims = {entry["claim"]: entry for entry in executive_summary._read(PARAMS_DIR / "claims.yaml", "claims")}
    p95_claim = claims["API responses under 100 ms (p95, all routes)"]
    assert p95_claim["holds_if"] == {"at_most": moved_targets["api_p95_ms"]}
    card = {entry["label"]: entry for entry in executive_summary._read(PARAMS_DIR / "targets.yaml", "targets")}
    assert card["API p95 response time"]["at_most"] == moved_targets["api_p95_ms"]


def test_the_numbers_are_stated_only_in_targets_yaml():
    """No other params file writes the API p95 or error-rate target as a number."""
    for path in PARAMS_DIR.glob("*.yaml"):
        if path.name == "targets.yaml":
            continue
        text = path.read_text(encoding="utf-8")
        for literal in ("above: 100\n", "above: 0.05\n", "at_most: 100}", "at_most: 0.05}", "p95_target_ms: 100"):
            assert literal not in text, f"{path.name} states {literal.strip()} itself"


def test_an_unknown_target_is_refused_naming_where_and_the_known_ones():
    with pytest.raises(ParamsError, match=r"rules\[0\].*no target 'api_p99_ms'.*known targets: .*api_p95_ms"):
        targets.resolve({"target": "api_p99_ms"}, "alert rules: rules[0]: 'above'")
