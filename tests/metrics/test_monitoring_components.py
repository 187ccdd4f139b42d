"""deploy/components/service-monitor and prometheus-rule: rendered with the real ``kubectl
kustomize`` on the sqlite overlay (with expose-metrics, as an operator adds them), the
ServiceMonitor scrapes the metrics Service's port, every alert has a runbook section in
docs/metrics.md, and the PromQL name extraction the scrape test relies on is right. Only
bifrost.controller.metrics imports prometheus_client (the engine and the Kubernetes layer
report through plain callbacks)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from deploy.rbac_kit import DEPLOY, REPO, by_kind, kustomize
from scrape_kit import alert_rules, promql_metric_names

Obj = dict[str, object]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    where = tmp_path_factory.mktemp("overlay")
    up = Path(*[".."] * len(where.parts[1:]))  # kustomize wants relative paths
    components = DEPLOY.relative_to("/") / "components"
    (where / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(up / DEPLOY.relative_to("/") / "overlays" / "sqlite")],
        "components": [str(up / components / c)
                       for c in ("expose-metrics", "service-monitor", "prometheus-rule")],
    }))
    return kustomize(where)


def test_service_monitor_scrapes_the_metrics_service(rendered: list[dict[str, object]]) -> None:
    (monitor,) = by_kind(rendered, "ServiceMonitor").values()
    service = by_kind(rendered, "Service")["bifrost-metrics"]
    spec = monitor["spec"]
    assert isinstance(spec, dict)
    labels = service["metadata"]["labels"]  # type: ignore[index]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]  # type: ignore[index]
    ports = {p["name"] for p in service["spec"]["ports"]}  # type: ignore[index]
    assert [e["port"] for e in spec["endpoints"]] == ["metrics"]
    assert "metrics" in ports
    assert spec["endpoints"][0]["path"] == "/metrics"


def test_alerts_cover_the_issue_and_each_has_a_runbook(rendered: list[dict[str, object]]) -> None:
    (rule,) = by_kind(rendered, "PrometheusRule").values()
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]  # type: ignore[index]
    assert rules == alert_rules()
    names = {r["alert"] for r in rules}
    assert names == {"BifrostCertificateExpiringWithoutRenewal",
                     "BifrostCertificateRotationFailed", "BifrostOperationStuck",
                     "BifrostNoLeader", "BifrostDriftRepairedRepeatedly"}
    doc = (REPO / "docs" / "metrics.md").read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", doc, flags=re.M)}
    for r in rules:
        anchor = r["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in headings, r["alert"]
        assert r["labels"]["severity"] in ("warning", "critical")
        assert promql_metric_names(r["expr"]), r["alert"]


def test_promql_metric_names() -> None:
    expr = ('max by (machine) (bifrost_x_seconds{machine!="a b"}) > 1800 or '
            'sum(increase(c_total{result="failed"}[30m])) > 0 unless on (ns) d - time() '
            '< 7 * 86400 and (max(e{name="x"}) or vector(0)) < 1e3')
    assert promql_metric_names(expr) == {"bifrost_x_seconds", "c_total", "d", "e"}


def test_only_the_metrics_package_imports_prometheus_client() -> None:
    importers = set()
    for path in (REPO / "bifrost").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m.split(".")[0] == "prometheus_client" for m in modules):
                importers.add(path.relative_to(REPO).parts[:3])
    assert importers == {("bifrost", "controller", "metrics")}
