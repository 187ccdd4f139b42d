"""CRD structural schema: defaulting, pruning and validation against the real CRDs."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.schema import FieldError, StructuralSchema, invalid_message

SHARED = Path("/work/shared")
GATEWAY_API = SHARED / "gateway-api" / "v1.6.1"
CERT_MANAGER = SHARED / "cert-manager"
GV = "gateway.networking.k8s.io/v1"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

pytestmark = pytest.mark.skipif(not GATEWAY_API.is_dir(), reason="shared CRDs not available")


@cache
def crd_schema(path: Path, version: str = "v1") -> StructuralSchema:
    doc = yaml.load(path.read_text(), Loader=_LOADER)
    for v in doc["spec"]["versions"]:
        if v["name"] == version:
            return StructuralSchema(v["schema"]["openAPIV3Schema"])
    raise LookupError(version)


def gateway_schema() -> StructuralSchema:
    return crd_schema(GATEWAY_API / "gateway.networking.k8s.io_gateways.yaml")


def httproute_schema() -> StructuralSchema:
    return crd_schema(GATEWAY_API / "gateway.networking.k8s.io_httproutes.yaml")


def certificate_schema() -> StructuralSchema:
    return crd_schema(CERT_MANAGER / "cert-manager.io_certificates.yaml")


def issuer_schema() -> StructuralSchema:
    return crd_schema(CERT_MANAGER / "cert-manager.io_issuers.yaml")


def gateway(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "gatewayClassName": "bifrost",
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
    }
    base.update(spec)
    return {"apiVersion": GV, "kind": "Gateway", "metadata": {"name": "g"}, "spec": base}


def admit(s: StructuralSchema, obj: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """What the server does on write: prune, default, validate."""
    out = s.apply_defaults(s.prune(obj))
    return out, s.validate(out)


# --------------------------------------------------------------------------------------------
# defaulting


def test_gateway_gets_default_status() -> None:
    out = gateway_schema().apply_defaults(gateway())
    assert out["status"] == {
        "conditions": [
            {
                "lastTransitionTime": "1970-01-01T00:00:00Z",
                "message": "Waiting for controller",
                "reason": "Pending",
                "status": "Unknown",
                "type": t,
            }
            for t in ("Accepted", "Programmed")
        ]
    }


def test_gateway_existing_status_is_kept() -> None:
    obj = gateway()
    obj["status"] = {"conditions": []}
    assert gateway_schema().apply_defaults(obj)["status"] == {"conditions": []}


def test_listener_default_allowed_routes_only_where_parent_exists() -> None:
    s = gateway_schema()
    obj = gateway(
        listeners=[
            {"name": "a", "port": 80, "protocol": "HTTP"},
            {
                "name": "b",
                "port": 81,
                "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}},
            },
        ]
    )
    out = s.apply_defaults(obj)
    assert out["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    assert out["spec"]["listeners"][1]["allowedRoutes"] == {"namespaces": {"from": "All"}}
    assert "infrastructure" not in out["spec"] and "tls" not in out["spec"]
    assert obj["spec"]["listeners"][0] == {"name": "a", "port": 80, "protocol": "HTTP"}


def test_nested_default_inside_given_parent() -> None:
    obj = gateway(listeners=[{"name": "a", "port": 80, "protocol": "HTTP", "allowedRoutes": {}}])
    out = gateway_schema().apply_defaults(obj)
    assert out["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}


def test_httproute_defaults() -> None:
    route = {
        "apiVersion": GV,
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {
            "parentRefs": [{"name": "g"}],
            "rules": [{"backendRefs": [{"name": "svc", "port": 8080}]}],
        },
    }
    out, errs = admit(httproute_schema(), route)
    assert errs == []
    assert out["spec"]["parentRefs"] == [
        {"name": "g", "group": "gateway.networking.k8s.io", "kind": "Gateway"}
    ]
    rule = out["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [
        {"name": "svc", "port": 8080, "group": "", "kind": "Service", "weight": 1}
    ]


def test_null_in_non_nullable_field_is_dropped_or_defaulted() -> None:
    obj = gateway(
        listeners=[{"name": "a", "port": 80, "protocol": "HTTP", "hostname": None}],
        addresses=None,
    )
    obj["spec"]["listeners"][0]["allowedRoutes"] = None
    out = gateway_schema().apply_defaults(obj)
    listener = out["spec"]["listeners"][0]
    assert "hostname" not in listener
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    assert "addresses" not in out["spec"]


# --------------------------------------------------------------------------------------------
# pruning


def test_unknown_fields_are_pruned() -> None:
    obj = gateway()
    obj["spec"]["bogus"] = 1
    obj["spec"]["listeners"][0]["extra"] = {"x": 1}
    obj["toplevel"] = True
    obj["metadata"]["whatever"] = "kept: metadata is the server's business"
    out = gateway_schema().prune(obj)
    assert "bogus" not in out["spec"]
    assert out["spec"]["listeners"][0] == {"name": "http", "port": 80, "protocol": "HTTP"}
    assert "toplevel" not in out
    assert out["apiVersion"] == GV and out["kind"] == "Gateway"
    assert out["metadata"]["whatever"]
    assert obj["spec"]["bogus"] == 1


def test_additional_properties_are_kept_and_pruned_inside() -> None:
    obj = gateway(infrastructure={"labels": {"a": "b"}, "nope": 1})
    out = gateway_schema().prune(obj)
    assert out["spec"]["infrastructure"] == {"labels": {"a": "b"}}


def test_preserve_unknown_fields() -> None:
    issuer = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "i"},
        "spec": {
            "acme": {
                "server": "https://acme",
                "privateKeySecretRef": {"name": "k"},
                "solvers": [
                    {
                        "dns01": {
                            "webhook": {
                                "groupName": "g",
                                "solverName": "s",
                                "config": {"any": {"thing": [1]}},
                            }
                        }
                    }
                ],
                "junk": 1,
            }
        },
    }
    out = issuer_schema().prune(issuer)
    webhook = out["spec"]["acme"]["solvers"][0]["dns01"]["webhook"]
    assert webhook["config"] == {"any": {"thing": [1]}}
    assert "junk" not in out["spec"]["acme"]


SYNTH = StructuralSchema(
    {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["count"],
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                        "exclusiveMaximum": True,
                        "maximum": 10,
                    },
                    "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                    "port": {"x-kubernetes-int-or-string": True},
                    "mode": {"type": "integer", "enum": [1, 2]},
                    "addr": {"type": "string", "format": "ipv4"},
                    "opt": {"type": "string", "nullable": True},
                    "choice": {"type": "string", "nullable": True, "enum": ["x", "y"]},
                    "tags": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 2,
                        "items": {"type": "string", "minLength": 2},
                        "x-kubernetes-list-type": "set",
                    },
                    "labels": {
                        "type": "object",
                        "maxProperties": 1,
                        "additionalProperties": {"type": "string"},
                    },
                    "sel": {
                        "type": "object",
                        "minProperties": 1,
                        "x-kubernetes-map-type": "atomic",
                        "properties": {"a": {"type": "string"}},
                    },
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {
                            "spec": {"type": "object", "properties": {"x": {"type": "string"}}}
                        },
                    },
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "k": {"type": "string", "default": "d"},
                                "v": {"type": "integer", "default": 1},
                            },
                        },
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["k"],
                    },
                    "plain": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
)


def test_embedded_resource_keeps_type_meta_and_metadata() -> None:
    obj = {
        "spec": {
            "count": 1,
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"labels": {"a": "b"}},
                "spec": {"x": "y", "drop": 1},
                "drop": 2,
            },
            "free": {"anything": {"goes": True}},
        }
    }
    out = SYNTH.prune(obj)
    assert out["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {"a": "b"}},
        "spec": {"x": "y"},
    }
    assert out["spec"]["free"] == {"anything": {"goes": True}}


def test_defaults_in_map_list_items() -> None:
    out = SYNTH.apply_defaults({"spec": {"count": 1, "items": [{}, {"k": "x", "v": 5}]}})
    assert out["spec"]["items"] == [{"k": "d", "v": 1}, {"k": "x", "v": 5}]


# --------------------------------------------------------------------------------------------
# validation


def test_valid_gateway() -> None:
    assert admit(gateway_schema(), gateway())[1] == []


def test_listener_without_name_is_required() -> None:
    obj = gateway(listeners=[{"port": 80, "protocol": "HTTP"}])
    _, errs = admit(gateway_schema(), obj)
    assert errs == [FieldError("FieldValueRequired", "Required value", "spec.listeners[0].name")]
    assert (
        invalid_message("Gateway.gateway.networking.k8s.io", "g", errs)
        == 'Gateway.gateway.networking.k8s.io "g" is invalid: '
        "spec.listeners[0].name: Required value"
    )


def test_missing_spec_fields() -> None:
    obj = gateway()
    del obj["spec"]["gatewayClassName"]
    del obj["spec"]["listeners"]
    _, errs = admit(gateway_schema(), obj)
    assert [e.field for e in errs] == ["spec.gatewayClassName", "spec.listeners"]
    assert {e.reason for e in errs} == {"FieldValueRequired"}


GATEWAY_INVALID: list[tuple[str, dict[str, Any], FieldError]] = [
    (
        "enum",
        {
            "listeners": [
                {
                    "name": "a",
                    "port": 80,
                    "protocol": "HTTP",
                    "allowedRoutes": {"namespaces": {"from": "Bogus"}},
                }
            ]
        },
        FieldError(
            "FieldValueNotSupported",
            'Unsupported value: "Bogus": supported values: "All", "Selector", "Same"',
            "spec.listeners[0].allowedRoutes.namespaces.from",
        ),
    ),
    (
        "type integer",
        {"listeners": [{"name": "a", "port": "80", "protocol": "HTTP"}]},
        FieldError(
            "FieldValueTypeInvalid",
            'Invalid value: "string": '
            'spec.listeners[0].port in body must be of type integer: "string"',
            "spec.listeners[0].port",
        ),
    ),
    (
        "minimum",
        {"listeners": [{"name": "a", "port": 0, "protocol": "HTTP"}]},
        FieldError(
            "FieldValueInvalid",
            "Invalid value: 0: spec.listeners[0].port in body should be greater than or equal to 1",
            "spec.listeners[0].port",
        ),
    ),
    (
        "maximum",
        {"listeners": [{"name": "a", "port": 70000, "protocol": "HTTP"}]},
        FieldError(
            "FieldValueInvalid",
            "Invalid value: 70000: "
            "spec.listeners[0].port in body should be less than or equal to 65535",
            "spec.listeners[0].port",
        ),
    ),
    (
        "pattern",
        {"listeners": [{"name": "a", "port": 80, "protocol": "HTTP", "hostname": "Bad_Host"}]},
        FieldError(
            "FieldValueInvalid",
            'Invalid value: "Bad_Host": spec.listeners[0].hostname in body should match '
            "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
            "spec.listeners[0].hostname",
        ),
    ),
    (
        "minLength",
        {"gatewayClassName": ""},
        FieldError(
            "FieldValueInvalid",
            'Invalid value: "": spec.gatewayClassName in body should be at least 1 chars long',
            "spec.gatewayClassName",
        ),
    ),
    (
        "maxLength",
        {"gatewayClassName": "x" * 254},
        FieldError(
            "FieldValueTooLong", "Too long: may not be more than 253 bytes", "spec.gatewayClassName"
        ),
    ),
    (
        "maxItems",
        {"listeners": [{"name": f"l{i}", "port": 1000 + i, "protocol": "HTTP"} for i in range(65)]},
        FieldError(
            "FieldValueTooMany", "Too many: 65: must have at most 64 items", "spec.listeners"
        ),
    ),
    (
        "minItems",
        {"listeners": []},
        FieldError(
            "FieldValueInvalid",
            "Invalid value: 0: spec.listeners in body should have at least 1 items",
            "spec.listeners",
        ),
    ),
    (
        "type object",
        {"infrastructure": "nope"},
        FieldError(
            "FieldValueTypeInvalid",
            'Invalid value: "string": spec.infrastructure in body must be of type object: "string"',
            "spec.infrastructure",
        ),
    ),
    (
        "map list duplicate",
        {
            "listeners": [
                {"name": "a", "port": 80, "protocol": "HTTP"},
                {"name": "a", "port": 81, "protocol": "HTTP"},
            ]
        },
        FieldError("FieldValueDuplicate", 'Duplicate value: {"name":"a"}', "spec.listeners[1]"),
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in GATEWAY_INVALID], ids=[c[0] for c in GATEWAY_INVALID]
)
def test_gateway_invalid(spec: dict[str, Any], expected: FieldError) -> None:
    _, errs = admit(gateway_schema(), gateway(**spec))
    assert expected in errs, errs


def test_gateway_ip_address_format_via_one_of() -> None:
    obj = gateway(addresses=[{"type": "IPAddress", "value": "not-an-ip"}])
    _, errs = admit(gateway_schema(), obj)
    assert errs
    assert all(e.field.startswith("spec.addresses[0]") for e in errs)
    assert any("must be of type ipv4" in e.message for e in errs)
    ok = gateway(addresses=[{"type": "IPAddress", "value": "10.0.0.1"}, {"value": "::1"}])
    assert admit(gateway_schema(), ok)[1] == []


SYNTH_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    ("valid", {"count": 3, "ratio": 0.5, "port": "http", "mode": 2}, []),
    ("int or string int", {"count": 3, "port": 8080}, []),
    ("integral float is an integer", {"count": 3.0}, []),
    (
        "int or string rejects bool",
        {"count": 1, "port": True},
        [
            (
                "FieldValueTypeInvalid",
                "spec.port",
                'Invalid value: "boolean": '
                'spec.port in body must be of type integer,string: "boolean"',
            )
        ],
    ),
    (
        "number is not integer",
        {"count": 1.5},
        [
            (
                "FieldValueTypeInvalid",
                "spec.count",
                'Invalid value: "number": spec.count in body must be of type integer: "number"',
            )
        ],
    ),
    (
        "bool is not integer",
        {"count": True},
        [
            (
                "FieldValueTypeInvalid",
                "spec.count",
                'Invalid value: "boolean": spec.count in body must be of type integer: "boolean"',
            )
        ],
    ),
    (
        "exclusive maximum",
        {"count": 10},
        [
            (
                "FieldValueInvalid",
                "spec.count",
                "Invalid value: 10: spec.count in body should be less than 10",
            )
        ],
    ),
    (
        "exclusive minimum",
        {"count": 1, "ratio": 0},
        [
            (
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 0: spec.ratio in body should be greater than 0",
            )
        ],
    ),
    (
        "integer enum",
        {"count": 1, "mode": 3},
        [
            (
                "FieldValueNotSupported",
                "spec.mode",
                'Unsupported value: 3: supported values: "1", "2"',
            )
        ],
    ),
    (
        "format ipv4",
        {"count": 1, "addr": "1.2.3"},
        [
            (
                "FieldValueTypeInvalid",
                "spec.addr",
                'Invalid value: "1.2.3": spec.addr in body must be of type ipv4: "1.2.3"',
            )
        ],
    ),
    ("nullable", {"count": 1, "opt": None}, []),
    (
        "nullable enum must list null",
        {"count": 1, "choice": None},
        [
            (
                "FieldValueNotSupported",
                "spec.choice",
                'Unsupported value: "null": supported values: "x", "y"',
            )
        ],
    ),
    (
        "not nullable",
        {"count": None},
        [
            (
                "FieldValueTypeInvalid",
                "spec.count",
                'Invalid value: "null": spec.count in body must be of type integer: "null"',
            )
        ],
    ),
    (
        "array items and set duplicates",
        {"count": 1, "tags": ["a", "bb", "bb"]},
        [
            ("FieldValueTooMany", "spec.tags", "Too many: 3: must have at most 2 items"),
            ("FieldValueDuplicate", "spec.tags[2]", 'Duplicate value: "bb"'),
            (
                "FieldValueInvalid",
                "spec.tags[0]",
                'Invalid value: "a": spec.tags[0] in body should be at least 2 chars long',
            ),
        ],
    ),
    (
        "properties",
        {"count": 1, "labels": {"a": "1", "b": 2}, "sel": {}},
        [
            ("FieldValueTooMany", "spec.labels", "Too many: 2: must have at most 1 item"),
            (
                "FieldValueTypeInvalid",
                "spec.labels.b",
                'Invalid value: "integer": spec.labels.b in body must be of type string: "integer"',
            ),
            (
                "FieldValueInvalid",
                "spec.sel",
                "Invalid value: 0: spec.sel in body should have at least 1 properties",
            ),
        ],
    ),
    ("required", {}, [("FieldValueRequired", "spec.count", "Required value")]),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in SYNTH_CASES], ids=[c[0] for c in SYNTH_CASES]
)
def test_synthetic_validation(spec: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    errs = SYNTH.validate({"spec": spec})
    assert sorted((e.reason, e.field, e.message) for e in errs) == sorted(expected)


def test_certificate_required_and_enum() -> None:
    cert: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "c"},
        "spec": {"dnsNames": ["a.example.com"], "privateKey": {"algorithm": "DSA"}},
    }
    _, errs = admit(certificate_schema(), cert)
    by_field = {e.field: e for e in errs}
    assert by_field["spec.issuerRef"].reason == "FieldValueRequired"
    assert by_field["spec.secretName"].reason == "FieldValueRequired"
    assert by_field["spec.privateKey.algorithm"].message == (
        'Unsupported value: "DSA": supported values: "RSA", "ECDSA", "Ed25519"'
    )
    good = copy.deepcopy(cert)
    good["spec"]["privateKey"]["algorithm"] = "ECDSA"
    good["spec"].update(secretName="s", issuerRef={"name": "ca", "kind": "Issuer"})
    assert admit(certificate_schema(), good)[1] == []


def test_root_metadata_is_not_validated() -> None:
    obj = gateway()
    obj["metadata"] = {"name": "g", "labels": {"a": 1}, "anything": []}
    assert gateway_schema().validate(obj) == []


# --------------------------------------------------------------------------------------------
# messages and list types


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([], 'Gateway.gateway.networking.k8s.io "g" is invalid'),
        (
            [
                FieldError("FieldValueRequired", "Required value", "spec.a"),
                FieldError("FieldValueRequired", "Required value", "spec.a"),
                FieldError("FieldValueInvalid", 'Invalid value: "x": nope', "spec.b"),
            ],
            'Gateway.gateway.networking.k8s.io "g" is invalid: '
            '[spec.a: Required value, spec.b: Invalid value: "x": nope]',
        ),
    ],
)
def test_invalid_message(errors: list[FieldError], expected: str) -> None:
    assert invalid_message("Gateway.gateway.networking.k8s.io", "g", errors) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "listeners"), ("map", ("name",))),
        (("status", "conditions"), ("map", ("type",))),
        (("status", "listeners", "*", "conditions"), ("map", ("type",))),
        (("spec", "addresses"), ("atomic", ())),
        (("spec", "listeners", "*", "allowedRoutes", "namespaces", "selector"), ("atomic", ())),
        (("spec", "listeners", "*", "allowedRoutes", "kinds"), ("atomic", ())),
        (("spec",), None),
        (("spec", "gatewayClassName"), None),
        (("spec", "nope"), None),
        (("metadata", "finalizers"), ("set", ())),
        (("metadata", "ownerReferences"), ("map", ("uid",))),
        (("metadata", "labels"), None),
    ],
)
def test_gateway_list_types(
    path: tuple[str, ...], expected: tuple[str, tuple[str, ...]] | None
) -> None:
    assert gateway_schema().list_type(path) == expected


def test_synthetic_list_types() -> None:
    assert SYNTH.list_type(("spec", "tags")) == ("set", ())
    assert SYNTH.list_type(("spec", "items")) == ("map", ("k",))
    assert SYNTH.list_type(("spec", "plain")) == ("atomic", ())
    assert SYNTH.list_type(("spec", "sel")) == ("atomic", ())
    assert SYNTH.list_type(("spec", "labels")) is None
    assert SYNTH.list_type(("spec", "free", "x")) is None


def test_embedded_resource_requires_type_meta() -> None:
    errs = SYNTH.validate({"spec": {"count": 1, "template": {"spec": {}}}})
    assert sorted((e.field, e.message) for e in errs) == [
        ("spec.template.apiVersion", "Required value: must not be empty"),
        ("spec.template.kind", "Required value: must not be empty"),
    ]


def test_undeclared_fields() -> None:
    obj = gateway()
    obj["spec"]["listeners"][0]["junk"] = 1
    obj["spec"]["bogus"] = {"x": 1}
    obj["metadata"]["anything"] = 1
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True", "nope": 1}]}
    assert gateway_schema().undeclared_fields(obj) == [
        '.spec.listeners[name="http"].junk',
        ".spec.bogus",
        '.status.conditions[type="Ready"].nope',
    ]
    assert gateway_schema().undeclared_fields(gateway()) == []
    synth = {"spec": {"count": 1, "tags": ["a"], "plain": ["x"], "free": {"a": {"b": 1}}}}
    assert SYNTH.undeclared_fields(synth) == []
