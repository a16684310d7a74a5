"""deploy/prometheus/alerts.yaml and deploy/grafana/dashboard.json: valid, naming only metrics the services export."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from shared import ops_metrics
from shared.observability import http_metrics
from tests.contract.support import DEPLOY, SERVICES, load_yaml, run, tool

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yaml"  # promtool's rule unit tests
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
BUILT_IN = {"up"}  # Prometheus writes it for every scrape target
# What a PromQL expression holds besides metric names: functions are followed by "(", and these.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the services' registries can export (their metric families, with suffixes)."""
    for service in SERVICES:  # importing each app module defines its metrics in the default registry
        importlib.import_module(f"services.{service}.app")
    http_metrics()
    names = set(BUILT_IN)
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and grouping
    clauses removed, then every identifier that is neither a function (followed by "(") nor a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if match.group() not in KEYWORDS and not rest.startswith("("):
            found.add(match.group())
    return found


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def panel_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_promtool_checks_the_alert_rules(tmp_path: Path) -> None:
    promtool = tool("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (scripts/install-contract-tools)")
    checked = run([promtool, "check", "rules", str(ALERTS)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(ALERTS.read_text().replace("> 300", "> > 300", 1))
    refused = run([promtool, "check", "rules", str(broken)])
    assert refused.returncode != 0, "promtool accepted a rule that does not parse"


def test_the_shipped_prometheus_configuration_is_valid_and_names_jobs_after_the_services() -> None:
    """alerts.yaml and the dashboard select `up{job="<service>"}`: the shipped scrape job must set it."""
    promtool = tool("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (scripts/install-contract-tools)")
    config = DEPLOY / "prometheus" / "prometheus.yaml"
    checked = run([promtool, "check", "config", str(config)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [job] = yaml.safe_load(config.read_text())["scrape_configs"]
    naming = [r for r in job["relabel_configs"] if r.get("target_label") == "job"]
    assert naming == [{"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "target_label": "job"}]
    assert 'job=~"returns|refunds|notifications|metrics|disputes"' in ALERTS.read_text()


def test_the_alerts_fire_when_they_should() -> None:
    """promtool's rule unit tests: the DLQ alert after 10 m of depth > 0, a stuck outbox, claims past deadline."""
    promtool = tool("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (scripts/install-contract-tools)")
    tested = run([promtool, "test", "rules", str(ALERT_TESTS)], timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_the_operators_need_are_there() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    wanted = {"OutboxStuck", "MessagesParked", "DeadLetterQueueNotEmpty", "HandlerErrors", "EmailFailures"}
    assert wanted | {"RefundsFailing", "ClaimsPastDeadline", "ServiceDown"} <= names
    dlq = next(rule for rule in alert_rules() if rule["alert"] == "DeadLetterQueueNotEmpty")
    assert dlq["for"] == "10m" and "returns_platform_dead_letter_depth" in dlq["expr"]


def test_the_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat", "gauge", "table"}, panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["targets"] and all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_every_expression_names_only_exported_metrics(where: str) -> None:
    exported = exported_names()
    exprs = [(r["alert"], r["expr"]) for r in alert_rules()] if where == "alerts" else panel_exprs()
    unknown = {(name, title) for title, expr in exprs for name in metric_names(expr) - exported}
    assert not unknown, f"{where} name metrics no service exports: {sorted(unknown)}"
    named = {name for _, expr in exprs for name in metric_names(expr)}
    assert named, "no metric found: the expression parser is broken"


def test_every_operational_metric_is_on_the_dashboard() -> None:
    on_dashboard = {name for _, expr in panel_exprs() for name in metric_names(expr)}
    families = [m for m in vars(ops_metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")]
    for family in families:
        series = {family._name + suffix for suffix in SUFFIXES[family._type]}
        assert series & on_dashboard, f"{family._name} has no panel"


def test_the_name_parser_sees_through_promql() -> None:
    expr = 'sum by (type, le) (rate(a_total{outcome=~"x|y", le="1"}[5m])) / on (type) b_seconds_bucket > bool 0'
    assert metric_names(expr) == {"a_total", "b_seconds_bucket"}
