"""``spec.tls.source: ListenerSecret``: the user brings the certificate in the Secret the listener
names; bifrost attaches a copy, and when the user replaces the certificate in that Secret it
rotates to a new copy with zero downtime (the Secret itself is never served directly, so the
swap is attach-beside → verify → drain → detach, not an in-place overwrite)."""

from __future__ import annotations

import base64
from typing import Any

from rotation_kit import Env, example_blueprint, https_gateway, resync_observed
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.machines.rotation import REASON_SOURCE_CHANGED
from devcluster.handshakes import HandshakeLoop
from devcluster.peers.ca import IssuedCertificate, LocalCA

COPY_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ certificate.name | to_json }}
type: kubernetes.io/tls
data: {{ source.data | to_json }}
"""


def _secret(namespace: str, name: str, issued: IssuedCertificate) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": b64(issued.chain_pem), "tls.key": b64(issued.key_pem),
                     "ca.crt": b64(issued.ca_pem)}}


def test_user_secret_change_rotates_to_a_new_copy_without_downtime(env: Env) -> None:
    ns = env.namespace
    ca = LocalCA.generate(common_name="user CA")
    first = ca.issue(["p.example.com"])
    env.kube.apply(_secret(ns, "pass-user-tls", first))
    env.kube.apply(example_blueprint(f"bp-{ns}", source="ListenerSecret",
                                     certificateTemplate=COPY_TEMPLATE, drainSeconds=1))
    env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    env.kube.apply(https_gateway(ns, "pass", f"gc-{ns}", ("p.example.com",)))
    uid = env.programmed("pass")["metadata"]["uid"]
    (old,) = env.attached(uid, "https-0")
    assert old.fingerprint_sha256 == first.fingerprint_sha256
    assert old.secret_name == old.object_name  # the copy is the Secret
    assert old.renewal_at is None  # renewing a user certificate is its owner's business

    loop = HandshakeLoop(env.targets("pass", ("p.example.com",)),
                         ca_pem=first.ca_pem.decode(), interval=0.02)
    second = ca.issue(["p.example.com"])
    with loop:
        env.kube.apply(_secret(ns, "pass-user-tls", second))

        def rotated() -> list[Any]:
            return [o for o in env.rotations(uid) if o.status.terminal]

        (op,) = wait_for(rotated, timeout=60, what="the rotation to the new user certificate")
        report = loop.report()
    assert op.status.value == "succeeded", op.last_error
    assert op.context["reason"] == REASON_SOURCE_CHANGED
    assert report.failures == 0, report.errors
    assert set(report.fingerprints) == {first.fingerprint_sha256, second.fingerprint_sha256}
    (new,) = env.attached(uid, "https-0")
    assert new.fingerprint_sha256 == second.fingerprint_sha256
    assert not env.secret_exists(old.object_name)  # the old copy is gone
    assert env.secret_exists("pass-user-tls")  # the user's Secret is never touched
    # no second rotation: the attached copy now matches the user's Secret (checked once the
    # Gateway was observed again after the rotation: the observer is what would start one)
    assert env.controller is not None
    resync_observed(env.controller)
    assert len(env.rotations(uid)) == 1
