"""Builders of the API objects the scenario tests create, as plain dicts (what ``kube.create``
takes): a Namespace, a GatewayClassBlueprint, a GatewayClass that uses it, a Gateway, an
HTTPRoute, and a namespace policy (a GatewayConfig on a Namespace).

Each takes what the tests vary; everything else is the smallest valid default (a Gateway has one
HTTP listener on port 80). A field a caller does not pass is left out, not sent empty.
"""

from __future__ import annotations

from typing import Any

from bifrost.api.objects import Obj

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
BIFROST_GROUP = "gateway.bifrost.dev"
CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"


def namespace_object(name: str) -> Obj:
    """A Namespace (named so, as ``namespace`` is what the tests call their namespace's name)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def blueprint(
    name: str,
    children: list[Obj],
    *,
    defaults: dict[str, Any] | None = None,
    **spec: Any,
) -> Obj:
    """A GatewayClassBlueprint; ``spec`` adds other spec fields (``values``, ``confinement``…)."""
    body: dict[str, Any] = {} if defaults is None else {"defaults": defaults}
    return {
        "apiVersion": BIFROST_API,
        "kind": "GatewayClassBlueprint",
        "metadata": {"name": name},
        "spec": {**body, "children": children, **spec},
    }


def gateway_class(name: str, blueprint: str | None) -> Obj:
    """A GatewayClass for bifrost's controller, its parameters the blueprint named (if any)."""
    spec: dict[str, Any] = {"controllerName": CONTROLLER_NAME}
    if blueprint is not None:
        spec["parametersRef"] = {
            "group": BIFROST_GROUP,
            "kind": "GatewayClassBlueprint",
            "name": blueprint,
        }
    return {"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": name},
            "spec": spec}


def gateway(
    namespace: str, name: str, class_name: str, listeners: list[Obj] | None = None
) -> Obj:
    """A Gateway of ``class_name``; one HTTP listener on port 80 unless ``listeners``."""
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": listeners or [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def http_route(namespace: str, name: str, *, parent: str, **spec: Any) -> Obj:
    """An HTTPRoute attached to the Gateway ``parent`` in its namespace."""
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": parent}], **spec},
    }


def namespace_policy(namespace: str, name: str, default: dict[str, Any]) -> Obj:
    """A GatewayConfig giving every Gateway in ``namespace`` the values ``default``."""
    return {
        "apiVersion": BIFROST_API,
        "kind": "GatewayConfig",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"group": "", "kind": "Namespace", "name": namespace},
                 "default": default},
    }


def widget_crd(group: str) -> Obj:
    """A namespaced ``Widget`` kind in ``group`` (``v1``, any fields): a CRD a test may install
    and delete on a shared cluster (use a group of its own)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
