"""Child-resource steps: apply a child gateway that attaches the listener's certificate, wait
until it is programmed, and delete every child the operation applied.

Children are applied with server-side apply under bifrost's field manager and carry an owner
reference to the user's Gateway (so the cluster's garbage collector backs up an explicit
teardown) and the gateway-uid label (so a re-created Gateway never adopts them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bifrost.engine import Done, StepContext, StepOutcome, Wait
from bifrost.kube import KubeClient, KubeError
from bifrost.machines.edge_certificate import EdgeCertificateContext
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.store.interface import OperationStore

GATEWAY_API = "gateway.networking.k8s.io/v1"
DATAPLANE_PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"


def parse_child_ref(ref: str) -> tuple[str, str, str, str]:
    """Split an "apiVersion/Kind namespace/name" reference (as recorded in the machine's
    context) into (api_version, kind, namespace, name)."""
    type_part, _, ns_name = ref.partition(" ")
    api_version, _, kind = type_part.rpartition("/")
    namespace, _, name = ns_name.partition("/")
    return api_version, kind, namespace, name


def owner_reference(c: EdgeCertificateContext) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "name": c.gateway,
        "uid": c.gateway_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


class ApplyChildGateway:
    """Apply the child gateway with one HTTPS listener attaching the certificate's Secret."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        name = c.child_gateway_name or f"{c.gateway}-child"
        body = {
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": {
                "name": name,
                "namespace": c.namespace,
                "labels": {"gateway.bifrost.dev/gateway-uid": c.gateway_uid},
                "ownerReferences": [owner_reference(c)],
            },
            "spec": {
                "gatewayClassName": c.child_gateway_class,
                "listeners": [
                    {
                        "name": c.listener,
                        "protocol": "HTTPS",
                        "port": 443,
                        "hostname": c.hostname,
                        "tls": {
                            "mode": "Terminate",
                            "certificateRefs": [{"kind": "Secret", "name": c.secret_name}],
                        },
                    }
                ],
            },
        }
        try:
            self.kube.apply(body)
        except KubeError as e:
            return outcome_for(e, doing=f"applying child Gateway {c.namespace}/{name}")
        ref = f"{GATEWAY_API}/Gateway {c.namespace}/{name}"
        return Done(
            output={"childGateway": name},
            context=c.model_copy(
                update={
                    "child_gateway_name": name,
                    "children": tuple(dict.fromkeys((*c.children, ref))),
                }
            ),
        )


class WaitChildProgrammed:
    """Wait until the child gateway reports Programmed=True for its current generation and has
    an address."""

    def __init__(self, kube: KubeClient, *, recheck: timedelta = timedelta(seconds=0.2)) -> None:
        self.kube = kube
        self.recheck = recheck

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        try:
            child = self.kube.get(GATEWAY_API, "Gateway", c.child_gateway_name, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading child Gateway {c.child_gateway_name}")
        if child is None:
            return Wait(f"child Gateway {c.child_gateway_name} not found yet", self.recheck)
        generation = child["metadata"].get("generation")
        status = child.get("status") or {}
        programmed = next(
            (x for x in status.get("conditions") or [] if x.get("type") == "Programmed"), None
        )
        if (
            not programmed
            or programmed.get("status") != "True"
            or programmed.get("observedGeneration") != generation
        ):
            why = (programmed or {}).get("message") or "not programmed yet"
            return Wait(f"child Gateway {c.child_gateway_name}: {why}", self.recheck)
        addresses = [a.get("value") for a in status.get("addresses") or [] if a.get("value")]
        if not addresses:
            return Wait(f"child Gateway {c.child_gateway_name} has no address yet", self.recheck)
        port = (child["metadata"].get("annotations") or {}).get(DATAPLANE_PORT_ANNOTATION, "443")
        return Done(
            output={"address": addresses[0], "port": int(port)},
            context=c.model_copy(update={"child_address": addresses[0], "child_port": int(port)}),
        )


class DeleteChildren:
    """Delete every child this operation applied (reverse order of creation); done when all are
    gone. Deletion carries the uid label check: only objects labelled with this gateway's uid."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        store: OperationStore | None = None,
        recheck: timedelta = timedelta(seconds=0.2),
    ) -> None:
        self.kube = kube
        self.store = store
        self.recheck = recheck

    def run(self, ctx: StepContext[EdgeCertificateContext], input: Any) -> StepOutcome:
        c = ctx.context
        remaining: list[str] = []
        for ref in reversed(c.children):
            api_version, kind, namespace, name = parse_child_ref(ref)
            try:
                live = self.kube.get(api_version, kind, name, namespace)
                if live is None:
                    continue
                labels = live["metadata"].get("labels") or {}
                if labels.get("gateway.bifrost.dev/gateway-uid") != c.gateway_uid:
                    continue  # not ours (re-created gateway): never delete it
                self.kube.delete(api_version, kind, name, namespace, uid=live["metadata"]["uid"])
                remaining.append(ref)
            except KubeError as e:
                return outcome_for(e, doing=f"deleting {ref}")
        if remaining:
            return Wait(f"waiting for {len(remaining)} children to be gone", self.recheck)
        if self.store is not None:
            # The certificate objects are gone: the store must not schedule their renewal.
            for cert in self.store.list_certificates(gateway_uid=c.gateway_uid):
                if cert.object_name == c.certificate_name and cert.state != "deleted":
                    self.store.upsert_certificate(
                        cert.model_copy(
                            update={"attached": False, "state": "deleted", "updated_at": ctx.now()}
                        )
                    )
        return Done(output={"deleted": list(c.children)})
