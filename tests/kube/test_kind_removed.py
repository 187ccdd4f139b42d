"""A kind whose CRD is deleted while the client runs: the server answers its paths with a plain
``404 page not found`` (no Status body). The client maps that to :class:`PathNotServed` (still a
``NotFound``: the object is gone too) and forgets its discovery, so the next use of the kind
raises ``UnknownKind`` instead of requesting a path the server no longer serves."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support.builders import widget_crd
from support.waiting import wait_for

from bifrost.kube import NotFound, PathNotServed, UnknownKind
from bifrost.kube.client import KubeClient
from bifrost.kube.errors import map_error

CRD_API = "apiextensions.k8s.io/v1"


class _ApiError(Exception):
    """The shape of the kubernetes client's ApiException that ``map_error`` reads."""

    def __init__(self, status: int, body: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.body, self.reason, self.headers = status, body, reason, {}


def test_a_plain_404_is_a_path_not_served_and_a_status_404_is_not() -> None:
    plain = map_error(_ApiError(404, "404 page not found\n", "Not Found"), kind="Widget")
    assert isinstance(plain, PathNotServed) and isinstance(plain, NotFound)
    status = map_error(_ApiError(404, '{"kind": "Status", "apiVersion": "v1", "status": '
                                      '"Failure", "reason": "NotFound", "code": 404, '
                                      '"message": "widgets \\"w\\" not found"}', "Not Found"))
    assert type(status) is NotFound and status.reason == "NotFound"


def test_a_deleted_crd_s_kind_becomes_unknown_after_one_plain_404(
        kube: KubeClient, namespace: str) -> None:
    group = f"k{uuid.uuid4().hex[:8]}.example.com"
    api_version = f"{group}/v1"
    kube.create(widget_crd(group))
    widget = {"apiVersion": api_version, "kind": "Widget",
              "metadata": {"name": "w", "namespace": namespace}}
    wait_for(lambda: _created(kube, widget), what="the new kind served", timeout=10)
    assert kube.is_namespaced(api_version, "Widget")  # discovery read and cached

    kube.delete(CRD_API, "CustomResourceDefinition", f"widgets.{group}")
    wait_for(lambda: kube.get(CRD_API, "CustomResourceDefinition", f"widgets.{group}") is None,
             what="the CRD gone", timeout=10)
    # the cached kind still names the old path: the server answers it with a plain 404
    with pytest.raises(PathNotServed):
        kube.apply(widget)
    # ... after which the kind is looked up again, and is unknown
    with pytest.raises(UnknownKind):
        kube.is_namespaced(api_version, "Widget")


def _created(kube: KubeClient, obj: dict[str, Any]) -> bool:
    try:
        kube.apply(obj)
    except UnknownKind:
        return False
    return True
