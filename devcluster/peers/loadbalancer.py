"""A load-balancer provider: gives child Gateways and load balancers loopback addresses.

bifrost is a controller of controllers: it creates child Gateways (for Istio, Contour …) and
Crossplane load balancers, then waits for *their* controllers to report addresses and readiness
before it reports the parent Gateway ``Programmed``. This peer plays those controllers in the
devcluster, over the API like the real ones:

- **Child Gateways** (``gateway.networking.k8s.io/v1`` ``Gateway`` whose ``spec.gatewayClassName``
  is one of ``LoadBalancerOptions.child_gateway_classes``): ``status.addresses =
  [{type: IPAddress, value: 127.0.0.1}]``, ``Accepted``/``Programmed`` True with
  ``observedGeneration``, and one ``status.listeners`` entry per listener (``Accepted``,
  ``ResolvedRefs`` — False/``InvalidCertificateRef`` when a referenced Secret is missing or not a
  usable TLS Secret — and ``Programmed``). The child classes' ``GatewayClass`` objects are
  ``Accepted``, as their real controller would do.
- **Crossplane-like load balancers** (default ``elbv2.aws.upbound.io/v1beta1`` ``LB``, registered
  permissively): ``status.atProvider.dnsName`` (default ``localhost``), ``status.atProvider.arn``
  and ``id``, and ``Ready`` (``Available``) / ``Synced`` (``ReconcileSuccess``) conditions.

With a :class:`~devcluster.peers.dataplane.DataPlane`, every child also gets its own
loopback TLS server. **Where it listens** is published as the annotation
``devcluster.bifrost.dev/dataplane-port: "<port>"`` on the child (a Gateway's ``status.addresses``
has no port field, and the loopback IP is the same for every child) and from
:meth:`LoadBalancer.port`. A restarted peer reuses the annotated port when it is free. Which
certificates a child attaches: a child Gateway's HTTPS/TLS listeners' ``tls.certificateRefs``
(``mode: Terminate``; Secret refs only; the namespace defaults to the Gateway's); a load balancer's
``spec.forProvider.certificateSecretRefs: [{name, namespace}]`` (a devcluster convention: a real
ALB listener would reference an ACM ARN). Cross-namespace references are served without checking
ReferenceGrants (the children are bifrost's own objects).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devcluster.client import Client, ClientError
from devcluster.peers._runtime import Informer, WatchEvent, WorkQueue
from devcluster.peers.clock import Clock, SystemClock, format_time
from devcluster.peers.dataplane import CertRef, ChildRef, DataPlane

__all__ = [
    "DEFAULT_CHILD_GATEWAY_CLASSES",
    "FIELD_MANAGER",
    "GATEWAY_API_VERSION",
    "PORT_ANNOTATION",
    "ChildKind",
    "LoadBalancer",
    "LoadBalancerOptions",
    "certificate_refs",
]

log = logging.getLogger(__name__)

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"
FIELD_MANAGER = "bifrost-devcluster-loadbalancer"
DEFAULT_CHILD_GATEWAY_CLASSES = frozenset({"istio", "devcluster"})
CHILD_CONTROLLER_NAME = "devcluster.bifrost.dev/loadbalancer"

_ROUTE_KINDS = {
    "HTTP": ["HTTPRoute", "GRPCRoute"],
    "HTTPS": ["HTTPRoute", "GRPCRoute"],
    "TLS": ["TLSRoute"],
    "TCP": ["TCPRoute"],
    "UDP": ["UDPRoute"],
}


@dataclass(frozen=True)
class ChildKind:
    """A kind the load balancer serves: ``style`` says how its status is written."""

    api_version: str
    kind: str
    style: Literal["gateway", "crossplane"]


@dataclass(frozen=True)
class LoadBalancerOptions:
    child_gateway_classes: frozenset[str] = DEFAULT_CHILD_GATEWAY_CLASSES
    """gatewayClassNames whose Gateways are children (served here), not bifrost's parents."""
    kinds: tuple[ChildKind, ...] = field(
        default=(
            ChildKind(GATEWAY_API_VERSION, "Gateway", "gateway"),
            ChildKind("elbv2.aws.upbound.io/v1beta1", "LB", "crossplane"),
        )
    )
    address: str = "127.0.0.1"
    dns_name: str = "localhost"
    """``status.atProvider.dnsName`` for Crossplane-style load balancers."""


def certificate_refs(style: str, obj: Mapping[str, Any]) -> list[CertRef]:
    """The TLS Secrets a child attaches, in listener order (see the module docstring)."""
    meta = obj.get("metadata") or {}
    own_ns = str(meta.get("namespace") or "")
    spec = obj.get("spec") or {}
    refs: list[CertRef] = []
    if style == "gateway":
        for listener in spec.get("listeners") or []:
            tls = listener.get("tls") or {}
            if listener.get("protocol") not in ("HTTPS", "TLS") or not tls:
                continue
            if tls.get("mode", "Terminate") != "Terminate":
                continue
            hostname = listener.get("hostname") or None
            for ref in tls.get("certificateRefs") or []:
                if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
                    continue
                refs.append(
                    CertRef(str(ref.get("namespace") or own_ns), str(ref["name"]), hostname)
                )
    else:
        for ref in (spec.get("forProvider") or {}).get("certificateSecretRefs") or []:
            if isinstance(ref, dict) and ref.get("name"):
                refs.append(CertRef(str(ref.get("namespace") or own_ns), str(ref["name"]), None))
    return refs


def _cond(
    ctype: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    old: list[dict[str, Any]],
    now: str,
) -> dict[str, Any]:
    prev = next((c for c in old if c.get("type") == ctype), None)
    transition = now
    if prev is not None and prev.get("status") == status and prev.get("lastTransitionTime"):
        transition = str(prev["lastTransitionTime"])
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def _strip(value: Any) -> Any:
    """``value`` without lastTransitionTime anywhere (to compare statuses semantically)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class LoadBalancer:
    """Watches the child kinds and fills their status; drives the data plane if given."""

    def __init__(
        self,
        client: Client,
        *,
        options: LoadBalancerOptions | None = None,
        dataplane: DataPlane | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options or LoadBalancerOptions()
        self.dataplane = dataplane
        self.clock: Clock = clock or SystemClock()
        self._client = client
        self._styles = {(k.api_version, k.kind): k.style for k in self.options.kinds}
        self._queue: WorkQueue[ChildRef] = WorkQueue("loadbalancer", self._reconcile)
        self._informers: dict[tuple[str, str], Informer] = {}
        watched = [(k.api_version, k.kind) for k in self.options.kinds]
        watched.append((GATEWAY_API_VERSION, "GatewayClass"))
        for api_version, kind in watched:
            self._informers[(api_version, kind)] = Informer(
                client, api_version, kind, self._handler(api_version, kind)
            )
        self._secrets: Informer | None = None
        if dataplane is not None:
            self._secrets = Informer(client, "v1", "Secret", self._on_secret)
            dataplane.subscribe(self._on_dataplane_change)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LoadBalancer:
        self._queue.start()
        if self._secrets is not None:
            self._secrets.start()
        for inf in self._informers.values():
            inf.start()
        return self

    def stop(self) -> None:
        for inf in self._informers.values():
            inf.stop()
        if self._secrets is not None:
            self._secrets.stop()
        self._queue.stop()

    def port(self, api_version: str, kind: str, namespace: str, name: str) -> int | None:
        """The data-plane port of a child (``None`` without a data plane or unknown child)."""
        if self.dataplane is None:
            return None
        return self.dataplane.port(ChildRef(api_version, kind, namespace, name))

    # -- events -------------------------------------------------------------------------------

    def _handler(self, api_version: str, kind: str) -> Callable[[WatchEvent], None]:
        def handle(event: WatchEvent) -> None:
            self._on_event(api_version, kind, event)

        return handle

    def _on_event(self, api_version: str, kind: str, event: WatchEvent) -> None:
        ns, name = event.key
        self._queue.add(ChildRef(api_version, kind, ns, name))
        if kind == "GatewayClass" and event.type != "DELETED":
            # A class becoming (or ceasing to be) a child class changes its Gateways' fate.
            gw = self._informers.get((GATEWAY_API_VERSION, "Gateway"))
            for g in gw.items() if gw else []:
                if (g.get("spec") or {}).get("gatewayClassName") == name:
                    meta = g.get("metadata") or {}
                    self._queue.add(
                        ChildRef(
                            GATEWAY_API_VERSION,
                            "Gateway",
                            str(meta.get("namespace") or ""),
                            str(meta.get("name")),
                        )
                    )

    def _on_secret(self, event: WatchEvent) -> None:
        assert self.dataplane is not None
        if event.type == "DELETED":
            self.dataplane.secret_deleted(*event.key)
        else:
            self.dataplane.secret_changed(event.object)

    def _on_dataplane_change(self, children: set[ChildRef]) -> None:
        for child in children:
            self._queue.add(child)

    # -- reconcile ----------------------------------------------------------------------------

    def _reconcile(self, ref: ChildRef) -> None:
        inf = self._informers.get((ref.api_version, ref.kind))
        obj = inf.get(ref.namespace, ref.name) if inf else None
        if ref.kind == "GatewayClass" and ref.api_version == GATEWAY_API_VERSION:
            if obj is not None:
                self._reconcile_class(ref, obj)
            return
        style = self._styles.get((ref.api_version, ref.kind))
        if obj is None or style is None or not self._is_child(style, obj):
            if self.dataplane is not None:
                self.dataplane.remove_child(ref)
            return
        port: int | None = None
        if self.dataplane is not None:
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            try:
                wanted = int(ann.get(PORT_ANNOTATION) or 0)
            except ValueError:
                wanted = 0
            port = self.dataplane.set_child(ref, certificate_refs(style, obj), port=wanted)
            if ann.get(PORT_ANNOTATION) != str(port):
                self._write(
                    ref,
                    lambda: self._client.patch(
                        ref.api_version,
                        ref.kind,
                        ref.name,
                        ref.namespace or None,
                        {"metadata": {"annotations": {PORT_ANNOTATION: str(port)}}},
                        field_manager=FIELD_MANAGER,
                    ),
                )
        status = self._gateway_status(obj) if style == "gateway" else self._crossplane_status(obj)
        old = obj.get("status") or {}
        if _strip({k: old.get(k) for k in status}) != _strip(status):
            self._write(
                ref,
                lambda: self._client.patch_status(
                    ref.api_version,
                    ref.kind,
                    ref.name,
                    ref.namespace or None,
                    status,
                    field_manager=FIELD_MANAGER,
                ),
            )

    def _write(self, ref: ChildRef, call: Any) -> None:
        try:
            call()
        except ClientError as exc:
            log.warning("updating %s failed (%s); retrying", ref, exc)
            self._queue.add_after(ref, 0.5)

    def _is_child(self, style: str, obj: Mapping[str, Any]) -> bool:
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            return True  # keep serving until it is gone
        if style != "gateway":
            return True
        cls = (obj.get("spec") or {}).get("gatewayClassName")
        return cls in self.options.child_gateway_classes

    def _reconcile_class(self, ref: ChildRef, obj: Mapping[str, Any]) -> None:
        if ref.name not in self.options.child_gateway_classes:
            return
        meta = obj.get("metadata") or {}
        old = list((obj.get("status") or {}).get("conditions") or [])
        conds = [
            _cond(
                "Accepted",
                "True",
                "Accepted",
                "Accepted by the devcluster load balancer (a child class)",
                meta.get("generation"),
                old,
                format_time(self.clock.now()),
            )
        ]
        others = [c for c in old if c.get("type") != "Accepted"]
        status = {"conditions": conds + others}
        if _strip(status) != _strip({"conditions": old}):
            self._write(
                ref,
                lambda: self._client.patch_status(
                    ref.api_version, ref.kind, ref.name, None, status, field_manager=FIELD_MANAGER
                ),
            )

    def _gateway_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        own_ns = str(meta.get("namespace") or "")
        old = obj.get("status") or {}
        now = format_time(self.clock.now())
        old_conds = list(old.get("conditions") or [])
        old_listeners = {str(li.get("name")): li for li in old.get("listeners") or []}
        listeners = []
        for listener in (obj.get("spec") or {}).get("listeners") or []:
            lname = str(listener.get("name"))
            prev = list((old_listeners.get(lname) or {}).get("conditions") or [])
            problems = []
            if self.dataplane is not None:
                single = {"metadata": {"namespace": own_ns}, "spec": {"listeners": [listener]}}
                for ref in certificate_refs("gateway", single):
                    problem = self.dataplane.ref_problem(ref.namespace, ref.name)
                    if problem:
                        problems.append(problem)
            kinds = _ROUTE_KINDS.get(str(listener.get("protocol")), [])
            resolved = not problems
            message = "; ".join(problems)
            listeners.append(
                {
                    "name": lname,
                    "supportedKinds": [
                        {"group": "gateway.networking.k8s.io", "kind": k} for k in kinds
                    ],
                    "attachedRoutes": 0,
                    "conditions": [
                        _cond(
                            "Accepted",
                            "True",
                            "Accepted",
                            "Listener accepted",
                            generation,
                            prev,
                            now,
                        ),
                        _cond(
                            "ResolvedRefs",
                            "True" if resolved else "False",
                            "ResolvedRefs" if resolved else "InvalidCertificateRef",
                            "All references resolved" if resolved else message,
                            generation,
                            prev,
                            now,
                        ),
                        _cond(
                            "Programmed",
                            "True" if resolved else "False",
                            "Programmed" if resolved else "Invalid",
                            "Listener programmed" if resolved else message,
                            generation,
                            prev,
                            now,
                        ),
                    ],
                }
            )
        return {
            "addresses": [{"type": "IPAddress", "value": self.options.address}],
            "conditions": [
                _cond(
                    "Accepted",
                    "True",
                    "Accepted",
                    "Accepted by the devcluster load balancer",
                    generation,
                    old_conds,
                    now,
                ),
                _cond(
                    "Programmed",
                    "True",
                    "Programmed",
                    "Loopback address assigned",
                    generation,
                    old_conds,
                    now,
                ),
            ],
            "listeners": listeners,
        }

    def _crossplane_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        old = obj.get("status") or {}
        old_conds = list(old.get("conditions") or [])
        now = format_time(self.clock.now())
        name = str(meta.get("name"))
        uid = str(meta.get("uid") or "")[:8]
        at_provider = dict(old.get("atProvider") or {})
        at_provider.update(
            {
                "dnsName": self.options.dns_name,
                "arn": f"arn:aws:elasticloadbalancing:local:000000000000:loadbalancer/app/"
                f"{name}/{uid}",
                "id": name,
            }
        )
        return {
            "atProvider": at_provider,
            "conditions": [
                _cond("Ready", "True", "Available", "", generation, old_conds, now),
                _cond("Synced", "True", "ReconcileSuccess", "", generation, old_conds, now),
            ],
        }
