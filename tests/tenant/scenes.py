"""The inputs a tenant controls, as the controller would hand them to the renderer.

A *scene* is one Gateway of an example folder (``examples/*/`` and this folder's ``probe/``) with
its blueprint, the policies that apply to it and the HTTPRoutes attached to it. An *injection
point* is one place a tenant can put a value: a values leaf through a namespace or Gateway policy
(``ns-policy:<path>`` / ``gw-policy:<path>``), the Gateway's name, a listener's hostname, an
HTTPRoute's name, one of its hostnames or its first path match. ``render_scene`` renders
everything the provision would render for the scene — ``spec.children`` (with every dependency
live), ``spec.tls.certificateTemplate`` per managed listener, ``spec.routeChildren`` per attached
route — into a flat ``{key: object | RenderError | None}`` map.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from bifrost.certificates.rules import certificate_name, listener_hostnames, managed_listeners
from bifrost.render import RenderError, render_certificate, render_gateway, render_route_children
from bifrost.render.merge import deep_merge, merge_values

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples"
PROBE = HERE / "probe"
CONTROLLER_NAMESPACE = "bifrost-system"

FOLDERS: dict[str, Path] = {
    **{p.name: p for p in sorted(EXAMPLES.iterdir()) if p.is_dir() and any(p.glob("*.yaml"))},
    "tenant-probe": PROBE,
}

MARKER = "Bfm7Qz_marker"
"""The benign value: plain text YAML keeps as a string, with upper case and ``_`` so that
``dns_label`` (which lower-cases and replaces ``_``) never passes it through unchanged."""

Outcome: TypeAlias = dict[str, Any] | RenderError | None


def documents(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def _target(doc: Mapping[str, Any]) -> tuple[str, str]:
    ref = (doc.get("spec") or {}).get("targetRef") or {}
    return str(ref.get("kind")), str(ref.get("name"))


@dataclass(frozen=True)
class Scene:
    folder: str
    blueprint: dict[str, Any]
    gateway: dict[str, Any]
    routes: tuple[dict[str, Any], ...]
    class_config: dict[str, Any]
    ns_config: dict[str, Any]
    gw_config: dict[str, Any]
    channels: tuple[str, ...]
    """How values reach this Gateway in its folder: ``ns-policy`` and/or ``gw-policy``."""

    @property
    def id(self) -> str:
        return f"{self.folder}:{self.gateway['metadata']['name']}"

    @property
    def namespace(self) -> str:
        return str(self.gateway["metadata"]["namespace"])

    @cached_property
    def child_ids(self) -> tuple[str, ...]:
        spec = self.blueprint["spec"]
        return tuple(c["id"] for c in (*(spec.get("children") or []),
                                       *(spec.get("routeChildren") or [])))

    def values(self, channel: str | None = None, extra: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
        """Merged values as the controller merges them, with ``extra`` added to the namespace
        (``ns-policy``) or Gateway (``gw-policy``) policy's defaults."""
        spec = self.blueprint["spec"]
        ns_default = dict(self.ns_config.get("default") or {})
        gw_default = dict(self.gw_config.get("default") or {})
        if channel == "ns-policy":
            ns_default = deep_merge(ns_default, extra or {})
        elif channel == "gw-policy":
            gw_default = deep_merge(gw_default, extra or {})
        return merge_values(
            blueprint_defaults=spec.get("defaults") or {},
            class_defaults=self.class_config.get("default") or {},
            namespace_defaults=ns_default,
            gateway_defaults=gw_default,
            gateway_overrides=self.gw_config.get("override") or {},
            namespace_overrides=self.ns_config.get("override") or {},
            class_overrides=self.class_config.get("override") or {},
            blueprint_overrides=spec.get("overrides") or {},
        )


def load_scenes() -> list[Scene]:
    scenes: list[Scene] = []
    for folder, path in FOLDERS.items():
        docs = documents(path)

        def of(kind: str, docs: list[dict[str, Any]] = docs) -> list[dict[str, Any]]:
            return [d for d in docs if d.get("kind") == kind]

        blueprints = {d["metadata"]["name"]: d for d in of("GatewayClassBlueprint")}
        classes = {d["metadata"]["name"]: d for d in of("GatewayClass")}
        for gateway in of("Gateway"):
            ns, name = gateway["metadata"]["namespace"], gateway["metadata"]["name"]
            cls = gateway["spec"]["gatewayClassName"]
            blueprint = blueprints[classes[cls]["spec"]["parametersRef"]["name"]]
            class_config: dict[str, Any] = {}
            for d in of("GatewayClassConfig"):
                if d["metadata"].get("namespace") == CONTROLLER_NAMESPACE \
                        and _target(d) == ("GatewayClass", cls):
                    class_config = d["spec"]
            ns_config: dict[str, Any] = {}
            gw_config: dict[str, Any] = {}
            for d in of("GatewayConfig"):
                if d["metadata"].get("namespace") != ns:
                    continue
                if _target(d) == ("Namespace", ns):
                    ns_config = d["spec"]
                elif _target(d) == ("Gateway", name):
                    gw_config = d["spec"]
            channels = tuple(c for c, present in (("ns-policy", ns_config),
                                                   ("gw-policy", gw_config)) if present)
            routes = tuple(
                r for r in of("HTTPRoute")
                if r["metadata"]["namespace"] == ns
                and any(p.get("name") == name and p.get("namespace", ns) == ns
                        for p in r["spec"].get("parentRefs") or [])
            )
            scenes.append(Scene(folder, blueprint, gateway, routes, class_config, ns_config,
                                gw_config, channels or ("ns-policy",)))
    return scenes


# ---- rendering ----------------------------------------------------------------------------------


def _fake_live(child_id: str) -> dict[str, Any]:
    """A dependency's live state: what the example templates read from ``children``."""
    return {
        "apiVersion": "v1",
        "kind": "Live",
        "metadata": {"name": child_id, "annotations": {
            "devcluster.bifrost.dev/dataplane-port": "1"}},
        "status": {
            "atProvider": {"arn": f"arn:{child_id}", "dnsName": "lb.example", "id": child_id},
            "addresses": [{"type": "IPAddress", "value": "10.0.0.1"}],
        },
    }


@dataclass(frozen=True)
class Inputs:
    gateway: dict[str, Any]
    values: dict[str, Any]
    routes: tuple[dict[str, Any], ...] = field(default=())


def render_scene(scene: Scene, inputs: Inputs) -> dict[str, Outcome]:
    """Everything the provision renders for these inputs, by key:
    ``children/<id>``, ``certificate/<listener>``, ``routes/<ns>/<name>/<id>``; a value is the
    object, the ``RenderError`` or ``None`` (the child rendered empty: skipped)."""
    out: dict[str, Outcome] = {}
    live = {cid: _fake_live(cid) for cid in scene.child_ids}
    gateway = inputs.gateway
    listeners = managed_listeners(gateway) if (scene.blueprint["spec"].get("tls")) else []
    certificates = []
    for listener in listeners:
        name = certificate_name(gateway["metadata"]["name"], listener["name"], "op-1")
        certificates.append({"name": name, "secretName": f"{name}-tls",
                             "listener": listener["name"],
                             "hostnames": list(listener_hostnames(listener)),
                             "fingerprint": None, "notBefore": None, "notAfter": None})
    result = render_gateway(scene.blueprint, gateway=copy.deepcopy(gateway), values=inputs.values,
                            live_children=live, certificates=certificates)
    _collect(out, "children", result)
    tls = scene.blueprint["spec"].get("tls") or {}
    for listener, cert in zip(listeners, certificates, strict=True):
        key = f"certificate/{listener['name']}"
        context = {
            "gateway": copy.deepcopy(gateway),
            "values": copy.deepcopy(inputs.values),
            "listener": dict(listener),
            "certificate": {"name": cert["name"], "secretName": cert["secretName"],
                            "hostnames": cert["hostnames"], "listener": listener["name"]},
            "source": {},
        }
        try:
            out[key] = render_certificate(tls["certificateTemplate"], context=context)
        except RenderError as exc:
            out[key] = exc
    for index, route in enumerate(inputs.routes):
        result = render_route_children(scene.blueprint, gateway=copy.deepcopy(gateway),
                                       route=copy.deepcopy(route), values=inputs.values,
                                       live_children=live)
        _collect(out, f"routes/{index}", result)
    return out


def _collect(out: dict[str, Outcome], prefix: str, result: Any) -> None:
    assert not result.pending, f"{prefix}: pending {result.pending}"
    for child in result.children:
        out[f"{prefix}/{child.id}"] = child.object
    for child_id in result.skipped:
        out[f"{prefix}/{child_id}"] = None
    for error in result.errors:
        out[f"{prefix}/{error.child_id}"] = error


# ---- injection points ---------------------------------------------------------------------------


def _leaves(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, item in value.items():
        path = (*prefix, str(key))
        if isinstance(item, Mapping) and item:
            out.extend(_leaves(item, path))
        else:
            out.append(path)
    return out


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    assert isinstance(out, dict)
    return out


def _get(value: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@dataclass(frozen=True)
class Point:
    """One place a tenant can put a value."""

    scene: Scene
    kind: str
    """``ns-policy``, ``gw-policy``, ``gateway-name``, ``listener-hostname``, ``route-name``,
    ``route-hostname``, ``route-path``."""
    path: tuple[str, ...] = ()
    index: int = 0
    route: int = 0

    @property
    def id(self) -> str:
        detail = {
            "ns-policy": ".".join(self.path),
            "gw-policy": ".".join(self.path),
            "listener-hostname": str(self.index),
            "route-hostname": f"{self.route}.{self.index}",
            "route-name": str(self.route),
            "route-path": str(self.route),
        }.get(self.kind)
        return f"{self.scene.id}/{self.kind}" + (f":{detail}" if detail else "")

    @property
    def is_values(self) -> bool:
        return self.kind in ("ns-policy", "gw-policy")

    @property
    def text_only(self) -> bool:
        """Names, hostnames and route fields are strings in the API."""
        return not self.is_values

    def inputs(self, value: Any) -> Inputs:
        scene = self.scene
        gateway = copy.deepcopy(scene.gateway)
        routes = copy.deepcopy(list(scene.routes))
        values = scene.values()
        if self.is_values:
            base = _get(values, self.path)
            injected = [value] if isinstance(base, list) else value
            values = scene.values(self.kind, _nested(self.path, injected))
        elif self.kind == "gateway-name":
            gateway["metadata"]["name"] = value
        elif self.kind == "listener-hostname":
            gateway["spec"]["listeners"][self.index]["hostname"] = value
        elif self.kind == "route-name":
            routes[self.route]["metadata"]["name"] = value
        elif self.kind == "route-hostname":
            routes[self.route]["spec"]["hostnames"][self.index] = value
        elif self.kind == "route-path":
            routes[self.route]["spec"]["rules"][0]["matches"][0]["path"]["value"] = value
        else:  # pragma: no cover
            raise AssertionError(self.kind)
        return Inputs(gateway, values, tuple(routes))


def candidate_points(scene: Scene) -> list[Point]:
    points: list[Point] = []
    for channel in scene.channels:
        points += [Point(scene, channel, path) for path in _leaves(scene.values())]
    points.append(Point(scene, "gateway-name"))
    for index, listener in enumerate(scene.gateway["spec"]["listeners"]):
        if listener.get("hostname"):
            points.append(Point(scene, "listener-hostname", index=index))
    for r, route in enumerate(scene.routes):
        points.append(Point(scene, "route-name", route=r))
        for index in range(len(route["spec"].get("hostnames") or [])):
            points.append(Point(scene, "route-hostname", index=index, route=r))
        rules = route["spec"].get("rules") or []
        if rules and (rules[0].get("matches") or [{}])[0].get("path"):
            points.append(Point(scene, "route-path", route=r))
    return points


def contains_marker(value: Any) -> bool:
    if isinstance(value, str):
        return MARKER in value
    if isinstance(value, Mapping):
        return any(contains_marker(k) or contains_marker(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_marker(v) for v in value)
    return False


def injection_points() -> list[tuple[Point, dict[str, Outcome]]]:
    """Every point whose benign marker reaches at least one rendered object (the templates read
    it), with that benign render."""
    out: list[tuple[Point, dict[str, Outcome]]] = []
    for scene in load_scenes():
        for point in candidate_points(scene):
            benign = render_scene(scene, point.inputs(MARKER))
            errors = {k: str(v) for k, v in benign.items() if isinstance(v, RenderError)}
            assert not errors, f"{point.id}: the benign marker does not render: {errors}"
            if contains_marker(benign):
                out.append((point, benign))
    return out
