"""What only the fake has: it stands in for every port with the same signatures, fails on demand,
records its calls, hands out the changes a watch would deliver, and takes time from a clock."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest
from support.fake_kube import (
    Call,
    FakeKube,
    KindInfo,
    conflict,
    gone,
    server_error,
)

from bifrost.api.objects import meta
from bifrost.clock import ManualClock
from bifrost.controller.informers import Cache
from bifrost.kube import Conflict, Gone, ServerError, UnknownKind
from bifrost.kube.ports import Kube, KubeReader, KubeStatusWriter, KubeWriter

GATEWAY_API = "gateway.networking.k8s.io/v1"


def _cm(name: str, namespace: str = "default") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"k": "v"}}


@pytest.mark.parametrize("port", [KubeReader, KubeWriter, KubeStatusWriter, Kube])
def test_the_fake_is_every_port_with_the_same_signatures(port: type) -> None:
    fake = FakeKube()
    assert isinstance(fake, port)
    members = [n for n, v in vars(port).items() if inspect.isfunction(v)
               and not n.startswith("_")]
    for base in port.__mro__[1:]:
        members += [n for n, v in vars(base).items() if inspect.isfunction(v)
                    and not n.startswith("_") and base.__module__ == port.__module__]
    assert members
    for name in members:
        assert inspect.signature(getattr(FakeKube, name)) == inspect.signature(
            getattr(port, name)), name


def test_fail_next_raises_the_injected_error_as_often_as_asked_then_works() -> None:
    kube = FakeKube()
    kube.create(_cm("cm"))
    kube.fail_next("patch", kind="ConfigMap", error=server_error("ConfigMap", "cm"), times=2)
    for _ in range(2):
        with pytest.raises(ServerError) as raised:
            kube.patch("v1", "ConfigMap", "cm", "default", {"data": {"k": "w"}})
        assert raised.value.status == 500 and raised.value.delay == 1.0
    assert (kube.get("v1", "ConfigMap", "cm", "default") or {})["data"] == {"k": "v"}
    assert kube.pending_faults() == 0
    patched = kube.patch("v1", "ConfigMap", "cm", "default", {"data": {"k": "w"}})
    assert patched["data"] == {"k": "w"}


def test_fail_next_matches_verb_kind_and_name_only() -> None:
    kube = FakeKube()
    kube.fail_next("get", kind="Secret", name="wanted", error=gone("Secret", "wanted"))
    kube.fail_next("patch_status", error=conflict())
    assert kube.get("v1", "ConfigMap", "wanted", "default") is None
    assert kube.get("v1", "Secret", "other", "default") is None
    with pytest.raises(Gone):
        kube.get("v1", "Secret", "wanted", "default")
    with pytest.raises(Conflict) as raised:
        kube.patch_status(GATEWAY_API, "Gateway", "any", "default", {})
    assert raised.value.status == 409 and raised.value.reason == "Conflict"
    assert kube.pending_faults() == 0


def test_every_call_is_recorded_failed_ones_too() -> None:
    kube = FakeKube()
    kube.fail_next("delete", error=conflict())
    kube.apply(_cm("cm"))
    with pytest.raises(Conflict):
        kube.delete("v1", "ConfigMap", "cm", "default")
    kube.list("v1", "ConfigMap", "default")
    assert kube.calls == [
        Call("apply", "ConfigMap", "default", "cm"),
        Call("delete", "ConfigMap", "default", "cm"),
        Call("list", "ConfigMap", "default", None),
    ]
    assert kube.calls_of("delete") == [Call("delete", "ConfigMap", "default", "cm")]


def test_changes_are_what_a_watch_would_deliver_and_feed_a_cache() -> None:
    kube = FakeKube()
    kube.create(_cm("cm"))
    kube.patch("v1", "ConfigMap", "cm", "default", {"data": {"k": "w"}})
    kube.patch("v1", "ConfigMap", "cm", "default", {"data": {"k": "w"}})  # no change, no event
    kube.delete("v1", "ConfigMap", "cm", "default")
    changes = kube.drain_changes()
    assert [(c.type, c.kind) for c in changes] == [
        ("ADDED", "ConfigMap"), ("MODIFIED", "ConfigMap"), ("DELETED", "ConfigMap")]
    assert kube.drain_changes() == []
    cache = Cache()
    kube.create(_cm("kept"))
    for change in kube.drain_changes():
        cache.apply(change.kind, change.type, change.obj)
    assert meta(cache.get("ConfigMap", "default", "kept"))["name"] == "kept"


def test_apply_is_a_recursive_merge_that_keeps_what_it_leaves_out() -> None:
    """The documented simplification: a real server would drop ``a`` (no longer applied by the
    same manager); the fake keeps it."""
    kube = FakeKube()
    kube.apply({**_cm("cm"), "data": {"a": "1"}})
    applied = kube.apply({**_cm("cm"), "data": {"b": "2"}})
    assert applied["data"] == {"a": "1", "b": "2"}


def test_time_comes_from_the_clock_and_unknown_kinds_can_be_registered() -> None:
    clock = ManualClock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    kube = FakeKube(clock=clock)
    assert meta(kube.create(_cm("cm")))["creationTimestamp"] == "2030-01-02T03:04:05Z"
    lb = {"apiVersion": "example.com/v1", "kind": "LB", "metadata": {"name": "lb"}, "spec": {}}
    with pytest.raises(UnknownKind):
        kube.apply(lb)
    kube.register_kind(KindInfo("example.com/v1", "LB", "lbs", namespaced=False))
    assert meta(kube.apply(lb))["generation"] == 1
