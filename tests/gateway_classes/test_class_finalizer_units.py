"""The gateway-exists finalizer decision, from the informers' cache only: wanted while a Gateway
of the class exists (one being deleted too), removed with the last one, never added to a class
being deleted, never touched on another controller's class; a Gateway event enqueues its class
only when the finalizer must change. And the write, on FakeKube."""

from __future__ import annotations

from typing import Any

from support.builders import gateway, gateway_class
from support.fake_kube import FakeKube

from bifrost.controller.class_finalizer import (
    GATEWAY_EXISTS_FINALIZER,
    ClassFinalizer,
    class_keys_for_gateway,
    wanted_finalizers,
)
from bifrost.controller.informers import Cache, class_key

GATEWAY_API = "gateway.networking.k8s.io/v1"


def _with(obj: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], **metadata}}


def test_wanted_finalizers() -> None:
    cls = gateway_class("edge", "bp")
    assert wanted_finalizers(cls, in_use=True) == [GATEWAY_EXISTS_FINALIZER]
    assert wanted_finalizers(cls, in_use=False) is None
    other = _with(cls, finalizers=["example.com/keep"])
    assert wanted_finalizers(other, in_use=True) == ["example.com/keep", GATEWAY_EXISTS_FINALIZER]
    held = _with(cls, finalizers=["example.com/keep", GATEWAY_EXISTS_FINALIZER])
    assert wanted_finalizers(held, in_use=True) is None
    assert wanted_finalizers(held, in_use=False) == ["example.com/keep"]
    deleting = _with(cls, deletionTimestamp="2026-01-01T00:00:00Z")
    assert wanted_finalizers(deleting, in_use=True) is None  # the API refuses a new one


def test_gateway_events_enqueue_the_class_only_when_its_finalizer_must_change() -> None:
    cache = Cache()
    cache.apply("GatewayClass", "ADDED", gateway_class("edge", "bp"))
    foreign = gateway_class("theirs", None)
    foreign["spec"]["controllerName"] = "example.com/other"
    cache.apply("GatewayClass", "ADDED", foreign)

    gw = gateway("apps", "web", "edge")
    cache.apply("Gateway", "ADDED", gw)
    assert class_keys_for_gateway(cache, gw) == {class_key("edge")}
    # the finalizer is there: a status write of the Gateway enqueues nothing
    cache.apply("GatewayClass", "MODIFIED",
                _with(gateway_class("edge", "bp"), finalizers=[GATEWAY_EXISTS_FINALIZER]))
    assert class_keys_for_gateway(cache, gw) == set()
    # being deleted still counts; gone does not
    deleting = _with(gw, deletionTimestamp="2026-01-01T00:00:00Z")
    cache.apply("Gateway", "MODIFIED", deleting)
    assert class_keys_for_gateway(cache, deleting) == set()
    cache.apply("Gateway", "DELETED", deleting)
    assert class_keys_for_gateway(cache, deleting) == {class_key("edge")}
    # another controller's class is never ours to change
    theirs = gateway("apps", "other", "theirs")
    cache.apply("Gateway", "ADDED", theirs)
    assert class_keys_for_gateway(cache, theirs) == set()


def test_class_finalizer_writes_with_the_cached_resource_version() -> None:
    kube = FakeKube()
    created = kube.create(gateway_class("edge", "bp"))
    cache = Cache()
    cache.apply("GatewayClass", "ADDED", created)
    finalizer = ClassFinalizer(cache=cache, kube=kube)
    assert finalizer.sync(created) is None  # no Gateway: nothing to write
    cache.apply("Gateway", "ADDED", gateway("apps", "web", "edge"))
    assert finalizer.sync(created) == "class-finalizer-added"
    live = kube.get(GATEWAY_API, "GatewayClass", "edge")
    assert live is not None and live["metadata"]["finalizers"] == [GATEWAY_EXISTS_FINALIZER]
    cache.apply("GatewayClass", "MODIFIED", live)
    cache.apply("Gateway", "DELETED", gateway("apps", "web", "edge"))
    assert finalizer.sync(live) == "class-finalizer-removed"
    after = kube.get(GATEWAY_API, "GatewayClass", "edge")
    assert after is not None and not after["metadata"].get("finalizers")
