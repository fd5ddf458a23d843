"""Prometheus configuration, rules and their unit tests, checked by promtool.

promtool comes from Debian's ``prometheus`` package, which .ci/run installs; these
tests fail rather than skip without it, so a CI run can never pass them unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
CONFIG_FILE = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
PROMTOOL_TIMEOUT_SECONDS = 120
SEVERITIES = {"critical", "warning"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus")
    return path


def _run_promtool(*arguments: str | Path) -> None:
    result = subprocess.run(
        [_promtool(), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _alerting_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _alert_rule_tests() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_there_are_rules_and_rule_tests_to_check() -> None:
    assert RULE_FILES
    assert RULE_TEST_FILES


def test_configuration_and_the_rules_it_loads_are_valid() -> None:
    _run_promtool("check", "config", CONFIG_FILE)


def test_rule_files_are_valid() -> None:
    _run_promtool("check", "rules", *RULE_FILES)


def test_rule_unit_tests_pass() -> None:
    _run_promtool("test", "rules", *RULE_TEST_FILES)


def test_rule_unit_tests_load_every_rule_file() -> None:
    loaded = {
        (path.parent / rule_file).resolve()
        for path in RULE_TEST_FILES
        for rule_file in yaml.safe_load(path.read_text())["rule_files"]
    }

    assert loaded == {path.resolve() for path in RULE_FILES}


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _alerting_rules()])
def test_alert_is_tested_both_firing_and_silent(alert: str) -> None:
    cases = [case for case in _alert_rule_tests() if case["alertname"] == alert]

    assert any(case.get("exp_alerts") for case in cases), "never tested firing"
    assert any(not case.get("exp_alerts") for case in cases), "never tested silent"


@pytest.mark.parametrize("rule", _alerting_rules(), ids=lambda rule: rule["alert"])
def test_alert_states_its_severity_and_what_it_means(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
