"""The validator's fast paths (``validation_rules.validator``): a node's rules proven by their
Python translation on the stored value or on the view, else run as one CEL program in a context
with only the functions they call, on a view without the fields they cannot observe and with
placeholders for those they only count - and rule by rule, with the whole view, only when one
fails. Whatever path a value takes, the errors must be exactly those of running every rule by
itself on the whole view."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.schema import StructuralSchema
from devcluster.validation_rules import fields as cel_fields
from devcluster.validation_rules import validator
from tests.devcluster.unit.test_celrules_python import generate

CRDS = Path(__file__).resolve().parents[3] / "devcluster" / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def schemas() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CRDS.glob("*/*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            for version in (doc or {}).get("spec", {}).get("versions") or ():
                out.append((f"{path.name}:{version['name']}", version["schema"]["openAPIV3Schema"]))
    return out


RULE_BREAKERS = {
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
    "gateway.networking.k8s.io_grpcroutes.yaml",
}
"""The CRDs whose rules random values often break (the others' mostly guard rare fields)."""


def errors(schema: StructuralSchema, obj: dict[str, Any]) -> list[str]:
    return [str(e) for e in validator.check(schema, obj, None)]


@pytest.mark.parametrize(("name", "raw"), schemas(), ids=[n for n, _ in schemas()])
def test_every_path_gives_the_errors_of_rule_by_rule_on_whole_views(
    name: str, raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(name)
    fast = StructuralSchema(raw)
    objects = []
    for _ in range(150):
        obj = generate(raw, rnd)
        obj.setdefault("metadata", {"name": "x", "namespace": "n"})
        objects.append(fast.apply_defaults(obj))
    got = [errors(fast, o) for o in objects]
    # the reference: every rule by itself, on the whole view
    with monkeypatch.context() as m:
        m.setattr(cel_fields, "observed", lambda sources, s: None)
        m.setattr(validator, "_all_pass", lambda *args: None)
        m.setattr(validator, "_stored_pass", lambda *args: None)
        reference = StructuralSchema(raw)
        expected = [errors(reference, o) for o in objects]
    assert got == expected
    assert not all(expected)  # passing objects were seen
    if name.split(":")[0] in RULE_BREAKERS:
        assert sum(1 for e in expected if e) > 20  # and failing ones, on every path


def bench_gateway(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": f"gw-{i}", "namespace": "n"},
        "spec": {
            "gatewayClassName": "c",
            "listeners": [
                {"name": f"http-{i}", "port": 8000 + i, "protocol": "HTTP",
                 "hostname": f"h{i}.example.com"},
                {"name": f"https-{i}", "port": 9000 + i, "protocol": "HTTPS",
                 "hostname": f"s{i}.example.com",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"name": f"cert-{i}"}]}},
            ],
        },
    }  # fmt: skip


def bench_route(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": f"route-{i}", "namespace": "n"},
        "spec": {
            "parentRefs": [{"name": f"gw-{i}"}],
            "hostnames": [f"r{i}.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"/app-{i}"}}],
                    "filters": [
                        {"type": "RequestHeaderModifier",
                         "requestHeaderModifier": {"set": [{"name": "x-n", "value": str(i)}]}}
                    ],
                    "backendRefs": [{"name": f"svc-{i}", "port": 80 + i % 100}],
                }
            ],
        },
    }  # fmt: skip


def shipped(file: str) -> StructuralSchema:
    doc = yaml.load((CRDS / "gateway-api" / file).read_text(), Loader=_LOADER)
    return StructuralSchema(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_distinct_valid_gateways_and_routes_pass_without_calling_cel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The common case - a new object whose rules all hold - is proven in Python: no CEL
    context is ever asked for (the cost the fast path exists to avoid)."""

    def no_cel(*args: Any) -> Any:
        raise AssertionError("cel was called")

    monkeypatch.setattr(validator, "_fast_context", no_cel)
    monkeypatch.setattr(validator, "_context", no_cel)
    gateways = shipped("gateway.networking.k8s.io_gateways.yaml")
    routes = shipped("gateway.networking.k8s.io_httproutes.yaml")
    for i in range(100):
        assert validator.check(gateways, gateways.apply_defaults(bench_gateway(i)), None) == []
        assert validator.check(routes, routes.apply_defaults(bench_route(i)), None) == []


def test_a_failing_rule_still_reports_exactly_through_cel() -> None:
    routes = shipped("gateway.networking.k8s.io_httproutes.yaml")
    bad = bench_route(1)
    bad["spec"]["rules"][0]["matches"][0]["path"]["value"] = "/a//b"
    assert errors(routes, routes.apply_defaults(bad)) == [
        "spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '//' when "
        "type one of ['Exact', 'PathPrefix']"
    ]


def test_library_functions_work_in_a_context_with_only_them() -> None:
    """Rules calling library functions run (on the CEL path) with only those functions
    registered, and give the same answers and errors as with the whole library."""
    rules = [
        {"rule": "isURL(self.url) && url(self.url).getScheme() == 'https'", "message": "url"},
        {"rule": "self.tags.isSorted() && self.tags.indexOf('a') == 0", "message": "tags"},
        {"rule": "self.name.lowerAscii() == self.name", "message": "name"},
        {"rule": "quantity(self.size).isLessThan(quantity('1Gi'))", "message": "size"},
        {"rule": "isIP(self.ip) && string(ip(self.ip)) == self.ip", "message": "ip"},
    ]
    s = StructuralSchema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": rules,
                    "properties": {
                        "url": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "name": {"type": "string"},
                        "size": {"type": "string"},
                        "ip": {"type": "string"},
                    },
                }
            },
        }
    )
    good = {
        "url": "https://e.com/p",
        "tags": ["a", "b"],
        "name": "ok",
        "size": "1Mi",
        "ip": "10.0.0.1",
    }
    assert validator.check(s, {"spec": good}, None) == []
    bad = {"url": "e.com", "tags": ["b", "a"], "name": "Bad", "size": "2Gi", "ip": "10.0.0.1"}
    assert [e.message for e in validator.check(s, {"spec": bad}, None)] == [
        'Invalid value: "object": url',
        'Invalid value: "object": tags',
        'Invalid value: "object": name',
        'Invalid value: "object": size',
    ]
    broken = {**good, "size": "x"}
    assert [e.message for e in validator.check(s, {"spec": broken}, None)] == [
        'Invalid value: "object": quantities must match the regular expression '
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' evaluating rule: size"
    ]
