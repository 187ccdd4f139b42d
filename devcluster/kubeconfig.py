"""Kubeconfig files that point kubectl and the official client at a devcluster.

The devcluster does no authentication; the kubeconfig still carries a (dummy) token user so that
tools which insist on a user entry are satisfied.
"""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def kubeconfig_dict(url: str, *, context: str = "devcluster") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "devcluster"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, url: str, *, context: str = "devcluster") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(url, context=context), sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
