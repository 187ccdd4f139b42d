"""Protobuf bodies of the answered-not-stored kinds, end to end with the real kubectl.

``kubectl auth can-i`` posts a SelfSubjectAccessReview (or, with ``--list``, a
SelfSubjectRulesReview) and ``kubectl create token`` a TokenRequest, all as protobuf; the
devcluster must decode them for the review and token handlers to answer. ``kubectl drain``'s
Eviction is decoded from a hand-built body (the devcluster has no eviction subresource to post
it to).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from dc_support import kubectl, needs_kubectl
from test_protobuf import envelope, field

from devcluster.protobuf import decode_object


@needs_kubectl
def test_kubectl_auth_can_i_is_answered(kubeconfig_path: Path, namespace: str) -> None:
    can_i = ["auth", "can-i", "create", "deployments.apps", "--subresource=scale"]
    admin = kubectl(kubeconfig_path, "-n", namespace, *can_i)
    assert (admin.returncode, admin.stdout.strip()) == (0, "yes"), admin.stderr
    sa = f"system:serviceaccount:{namespace}:nobody"
    denied = kubectl(
        kubeconfig_path, "-n", namespace, "auth", "can-i", "get", "pods", f"--as={sa}", check=False
    )
    assert denied.stdout.strip() == "no", denied.stderr
    listing = kubectl(kubeconfig_path, "-n", namespace, "auth", "can-i", "--list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[:4] == ["Resources", "Non-Resource", "URLs", "Resource"]


@needs_kubectl
def test_kubectl_create_token_is_answered(kubeconfig_path: Path, namespace: str) -> None:
    name = f"bot-{uuid.uuid4().hex[:6]}"
    assert kubectl(kubeconfig_path, "-n", namespace, "create", "sa", name).returncode == 0
    out = kubectl(kubeconfig_path, "-n", namespace, "create", "token", name, "--duration=10m")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().count(".") == 2  # a JWT


def test_eviction_with_delete_options_decodes() -> None:
    meta = field(1, "web-0") + field(3, "shop")
    preconditions = field(1, "6d1f0b57-8c4a-4b55-9d4c-5f7f0c4e7a11")
    delete_options = field(1, 0) + field(2, preconditions)  # gracePeriodSeconds: 0 (a pointer)
    body = envelope("policy/v1", "Eviction", field(1, meta) + field(2, delete_options))
    assert decode_object(body) == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "web-0", "namespace": "shop"},
        "deleteOptions": {
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "6d1f0b57-8c4a-4b55-9d4c-5f7f0c4e7a11"},
        },
    }
