"""Drift of a child, as pure functions: what bifrost sets is compared, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bifrost.steps.drift import (
    drifted,
    field_shape,
    keep_live_values,
    observed_hash,
    parse_path,
)

BODY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
}


def served(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``body`` as an API server returns it: server metadata, defaults and a status added."""
    out = json.loads(json.dumps(body))
    out["metadata"].update(uid="u1", resourceVersion="7", managedFields=[{"manager": "bifrost"}])
    out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    out["status"] = {"readyReplicas": 2}
    out.update(extra)
    return out


def edited(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    node = out
    parts = parse_path(path)
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


def recorded(body: dict[str, Any], ignore: tuple[str, ...] = ()) -> tuple[str, str]:
    shape = field_shape(body, ignore)
    return json.dumps(shape), observed_hash(served(body), shape)


@pytest.mark.parametrize(
    ("change", "ignore", "expected"),
    [
        # untouched, or only what the server and other managers own changed
        (lambda o: o, (), False),
        (lambda o: edited(o, "status.readyReplicas", 0), (), False),
        (lambda o: edited(o, "metadata.resourceVersion", "99"), (), False),
        (lambda o: edited(o, "metadata.annotations", {"tool": "x"}), (), False),
        (lambda o: edited(o, "spec.paused", True), (), False),
        # a field bifrost sets
        (lambda o: edited(o, "spec.replicas", 99), (), True),
        (lambda o: edited(o, "metadata.labels", {}), (), True),
        (lambda o: edited(o, "spec.template.spec.containers.0.image", "evil"), (), True),
        (lambda o: edited(o, "spec.template.spec.containers", []), (), True),
        # ... unless the template lets it go
        (lambda o: edited(o, "spec.replicas", 99), ("spec.replicas",), False),
        (lambda o: edited(o, "spec.template.spec.containers.0.image", "x"),
         ("spec.template.spec.containers.0.image",), False),
    ],
)
def test_only_fields_bifrost_sets_count(change: Any, ignore: tuple[str, ...],
                                         expected: bool) -> None:
    shape_text, observed = recorded(BODY, ignore)
    assert drifted(change(served(BODY)), shape_text, observed) is expected


def test_a_deleted_child_drifted_and_nothing_recorded_is_unknown() -> None:
    shape_text, observed = recorded(BODY)
    assert drifted(None, shape_text, observed) is True
    assert drifted(served(BODY), None, None) is None
    assert drifted(served(BODY), "not json", observed) is None


def test_the_shape_holds_no_values() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"tls.key": "c2VjcmV0LWtleQ=="}}
    text = json.dumps(field_shape(secret))
    assert "c2VjcmV0" not in text and "tls.key" in text


def test_a_re_apply_keeps_the_live_values_of_ignored_fields() -> None:
    live = edited(served(BODY), "spec.replicas", 7)
    body = keep_live_values(BODY, live, ("spec.replicas", "spec.absent"))
    assert body["spec"]["replicas"] == 7
    assert "absent" not in body["spec"]
    assert BODY["spec"]["replicas"] == 2  # the rendered body is left as it was
    assert keep_live_values(BODY, None, ("spec.replicas",)) is BODY


def test_paths() -> None:
    assert parse_path("spec.ports.0.port") == ("spec", "ports", 0, "port")
    with pytest.raises(ValueError, match="empty segment"):
        parse_path("spec..x")
