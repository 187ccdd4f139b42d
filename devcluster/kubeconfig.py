"""Kubeconfig files that point kubectl and the official client at a devcluster.

The user is the cluster admin: a bearer token that authenticates as ``kubernetes-admin`` in
``system:masters`` (see :attr:`devcluster.server.DevCluster.admin_token`), so whoever holds the
file may do everything, as with a real cluster's admin kubeconfig. The server is the cluster's
``https://`` URL with its CA (``certificate-authority-data``): kubectl sends a token only over
TLS.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def kubeconfig_dict(
    url: str,
    *,
    context: str = "devcluster",
    token: str = "devcluster",
    certificate_authority: bytes | None = None,
) -> dict[str, object]:
    cluster: dict[str, str] = {"server": url}
    if certificate_authority is not None:
        cluster["certificate-authority-data"] = base64.b64encode(certificate_authority).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path,
    url: str,
    *,
    context: str = "devcluster",
    token: str = "devcluster",
    certificate_authority: bytes | None = None,
) -> Path:
    """Write (atomically, mode 0600) a kubeconfig for ``url`` whose user sends ``token``
    (verifying an ``https`` server against ``certificate_authority``, PEM)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    doc = kubeconfig_dict(
        url, context=context, token=token, certificate_authority=certificate_authority
    )
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
