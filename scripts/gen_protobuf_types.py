"""Generate devcluster/protobuf_types.py: the protobuf field tables of the built-in kinds.

Usage::

    python scripts/gen_protobuf_types.py API_GIT_DIR APIMACHINERY_GIT_DIR \
        > devcluster/protobuf_types.py && ruff format devcluster/protobuf_types.py

where the two arguments are git directories (bare or not) of kubernetes/api and
kubernetes/apimachinery. Everything is read from their ``HEAD`` with ``git show``.

Two upstream sources are joined per message and field number:

- ``generated.proto`` (go-to-protobuf output): message names, field numbers and types, ``map<>``
  and ``repeated``, and the ``+protobuf.nullable=true`` wrapper messages (a Go slice such as
  ``ExtraValue`` that is a plain JSON array);
- the Go structs (``types.go`` and friends): the JSON name (``json:"..."`` tag, ``,inline`` for
  embedded structs that are a nested message on the wire), whether the field is a pointer and
  whether the JSON tag has ``omitempty``/``omitzero``. The wire carries every non-pointer field
  even when zero; the JSON form omits those zero values, so the decoder needs to know which.

Only messages reachable from ``ROOTS`` (the kinds the devcluster serves, plus the option and
subresource kinds kubectl sends) are written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field

ROOTS = [
    "core.v1.Namespace",
    "core.v1.ConfigMap",
    "core.v1.Secret",
    "core.v1.Service",
    "core.v1.Event",
    "core.v1.Pod",
    "core.v1.Endpoints",
    "core.v1.ServiceAccount",
    "core.v1.Node",
    "core.v1.ReplicationController",
    "core.v1.ResourceQuota",
    "core.v1.LimitRange",
    "core.v1.PersistentVolumeClaim",
    "apps.v1.Deployment",
    "apps.v1.ReplicaSet",
    "apps.v1.StatefulSet",
    "apps.v1.DaemonSet",
    "apps.v1.ControllerRevision",
    "autoscaling.v1.Scale",
    "autoscaling.v1.HorizontalPodAutoscaler",
    "autoscaling.v2.HorizontalPodAutoscaler",
    "policy.v1.PodDisruptionBudget",
    "policy.v1.Eviction",
    "batch.v1.Job",
    "batch.v1.CronJob",
    "networking.v1.NetworkPolicy",
    "networking.v1.Ingress",
    "networking.v1.IngressClass",
    "rbac.v1.ClusterRole",
    "rbac.v1.ClusterRoleBinding",
    "rbac.v1.Role",
    "rbac.v1.RoleBinding",
    "authorization.v1.SelfSubjectAccessReview",
    "authorization.v1.SelfSubjectRulesReview",
    "authorization.v1.SubjectAccessReview",
    "authorization.v1.LocalSubjectAccessReview",
    "authentication.v1.TokenReview",
    "authentication.v1.TokenRequest",
    "authentication.v1.SelfSubjectReview",
    "admissionregistration.v1.ValidatingWebhookConfiguration",
    "admissionregistration.v1.MutatingWebhookConfiguration",
    "admissionregistration.v1.ValidatingAdmissionPolicy",
    "admissionregistration.v1.ValidatingAdmissionPolicyBinding",
    "coordination.v1.Lease",
    "events.v1.Event",
    "discovery.v1.EndpointSlice",
    "scheduling.v1.PriorityClass",
    "meta.v1.DeleteOptions",
    "meta.v1.CreateOptions",
    "meta.v1.UpdateOptions",
    "meta.v1.PatchOptions",
]

# messages the decoder converts by hand (their JSON form is not an object)
SPECIAL = {
    "meta.v1.Time",
    "meta.v1.MicroTime",
    "meta.v1.Duration",
    "meta.v1.FieldsV1",
    "util.intstr.IntOrString",
    "api.resource.Quantity",
    "runtime.RawExtension",
}

# API groups by the directory of their package in kubernetes/api
GROUPS = {
    "core": "",
    "apps": "apps",
    "autoscaling": "autoscaling",
    "policy": "policy",
    "batch": "batch",
    "networking": "networking.k8s.io",
    "rbac": "rbac.authorization.k8s.io",
    "authorization": "authorization.k8s.io",
    "authentication": "authentication.k8s.io",
    "admissionregistration": "admissionregistration.k8s.io",
    "coordination": "coordination.k8s.io",
    "events": "events.k8s.io",
    "discovery": "discovery.k8s.io",
    "scheduling": "scheduling.k8s.io",
    "meta": "meta.k8s.io",
}

SCALARS = {
    "string": "s",
    "int32": "i",
    "int64": "i",
    "bool": "b",
    "bytes": "y",
    "double": "d",
}

_PROTO_FIELD = re.compile(
    r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;|"
    r"^\s*map\s*<\s*string\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;"
)
_GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?(\*?[\w.\[\]*]+)\s+`([^`]*)`")
_TAG = re.compile(r'(\w+):"([^"]*)"')


@dataclass
class ProtoField:
    name: str
    number: int
    type: str  # short message name or scalar proto type
    repeated: bool = False
    map: bool = False


@dataclass
class GoField:
    json: str
    inline: bool
    pointer: bool
    omit: bool


@dataclass
class Message:
    name: str
    fields: list[ProtoField] = field(default_factory=list)
    nullable: bool = False


def short(name: str) -> str:
    name = name.lstrip(".")
    for prefix in ("k8s.io.apimachinery.pkg.apis.", "k8s.io.apimachinery.pkg.", "k8s.io.api."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def git_show(git_dir: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"HEAD:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def git_files(git_dir: str, folder: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", git_dir, "ls-tree", "--name-only", "HEAD", folder + "/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [p for p in out.split() if p.endswith(".go") and not p.endswith("_test.go")]


def head(git_dir: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, "log", "-1", "--format=%H %cs"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def parse_proto(text: str) -> dict[str, Message]:
    package = short(re.search(r"^package\s+([\w.]+);", text, re.M).group(1))  # type: ignore[union-attr]
    out: dict[str, Message] = {}
    current: Message | None = None
    comments: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            comments.append(stripped)
            continue
        m = re.match(r"^message\s+(\w+)\s*\{", stripped)
        if m:
            current = Message(f"{package}.{m.group(1)}")
            current.nullable = any("+protobuf.nullable=true" in c for c in comments)
            out[current.name] = current
        elif stripped == "}":
            current = None
        elif current is not None:
            f = _PROTO_FIELD.match(line)
            if f:
                if f.group(1):
                    typ = f.group(2)
                    qualified = (
                        short(typ)
                        if "." in typ
                        else (typ if typ in SCALARS else f"{package}.{typ}")
                    )
                    current.fields.append(
                        ProtoField(f.group(3), int(f.group(4)), qualified, f.group(1) == "repeated")
                    )
                else:
                    typ = f.group(5)
                    qualified = (
                        short(typ)
                        if "." in typ
                        else (typ if typ in SCALARS else f"{package}.{typ}")
                    )
                    current.fields.append(
                        ProtoField(f.group(6), int(f.group(7)), qualified, map=True)
                    )
        if stripped and not stripped.startswith("//"):
            comments = []
    return out


def parse_go(text: str, package: str) -> dict[tuple[str, int], GoField]:
    """(message, field number) -> JSON facts, from the struct tags of one Go file."""
    out: dict[tuple[str, int], GoField] = {}
    struct: str | None = None
    depth = 0
    for line in text.splitlines():
        m = re.match(r"^type\s+(\w+)\s+struct\s*\{", line)
        if m:
            struct, depth = m.group(1), 1
            continue
        if struct is None:
            continue
        code = line.split("//", 1)[0]
        depth += code.count("{") - code.count("}")
        if depth <= 0:
            struct = None
            continue
        if depth != 1:
            continue
        f = _GO_FIELD.match(line)
        if not f:
            continue
        tags = dict(_TAG.findall(f.group(3)))
        if "protobuf" not in tags:
            continue
        parts = tags["protobuf"].split(",")
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        number = int(parts[1])
        json_parts = tags.get("json", "").split(",")
        json_name = json_parts[0]
        if json_name == "-":
            continue
        inline = "inline" in json_parts[1:] or (json_name == "" and f.group(1) is None)
        if not json_name and not inline:
            json_name = f.group(1) or ""
        out[(f"{package}.{struct}", number)] = GoField(
            json_name,
            inline,
            f.group(2).startswith("*"),
            "omitempty" in json_parts[1:] or "omitzero" in json_parts[1:],
        )
    return out


# apimachinery packages by their short proto package name
MACHINERY = {
    "meta.v1": "pkg/apis/meta/v1",
    "util.intstr": "pkg/util/intstr",
    "api.resource": "pkg/api/resource",
    "runtime": "pkg/runtime",
    "runtime.schema": "pkg/runtime/schema",
}


class Upstream:
    """The two repositories, read one package at a time as messages are reached."""

    def __init__(self, api_dir: str, machinery_dir: str) -> None:
        self.api_dir = api_dir
        self.machinery_dir = machinery_dir
        self.messages: dict[str, Message] = {}
        self.go: dict[tuple[str, int], GoField] = {}
        self._loaded: set[str] = set()

    def message(self, name: str) -> Message:
        package = name.rsplit(".", 1)[0]
        if package not in self._loaded:
            self._loaded.add(package)
            if package in MACHINERY:
                git_dir, folder = self.machinery_dir, MACHINERY[package]
            else:
                git_dir, folder = self.api_dir, package.replace(".", "/")
            for msg in parse_proto(git_show(git_dir, f"{folder}/generated.proto")).values():
                self.messages[msg.name] = msg
            for path in git_files(git_dir, folder):
                self.go.update(parse_go(git_show(git_dir, path), package))
        if name not in self.messages:
            raise SystemExit(f"unknown message {name}")
        return self.messages[name]

    def closure(self) -> list[str]:
        seen: set[str] = set()
        todo = list(ROOTS)
        while todo:
            name = todo.pop()
            if name in seen or name in SPECIAL:
                continue
            seen.add(name)
            for f in self.message(name).fields:
                if f.type not in SCALARS:
                    todo.append(f.type)
        return sorted(seen)


def render(api_dir: str, machinery_dir: str) -> str:
    upstream = Upstream(api_dir, machinery_dir)
    names = upstream.closure()
    messages, go = upstream.messages, upstream.go
    lines = [
        '"""Protobuf field tables of the built-in kinds (GENERATED: do not edit).',
        "",
        "Generated by scripts/gen_protobuf_types.py from the upstream generated.proto files and",
        "Go struct tags of:",
        "",
        f"- kubernetes/api {head(api_dir)}",
        f"- kubernetes/apimachinery {head(machinery_dir)}",
        "",
        "``MESSAGES[message][field number] = (json name, type, flags)``. ``type`` is a message",
        "name (as in ``MESSAGES``, or one the decoder converts by hand: Time, MicroTime, Duration,",
        "FieldsV1, IntOrString, Quantity, RawExtension) or a scalar: ``s`` string, ``i`` integer,",
        "``b`` bool, ``y`` bytes (base64 in JSON), ``d`` double. ``flags``: ``r`` repeated, ``m``",
        "map with string keys (``type`` is the value type), ``i`` embedded inline in JSON, ``k``",
        "keep a zero value (a pointer, or a JSON tag without omitempty). ``LISTS`` are the",
        "wrapper messages that are a plain JSON array of their ``items``. ``KINDS`` maps",
        "(apiVersion, kind) to the message of the top-level object.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["KINDS", "LISTS", "MESSAGES"]',
        "",
        "Field = tuple[str, str, str]",
        "",
        "MESSAGES: dict[str, dict[int, Field]] = {",
    ]
    lists: list[str] = []
    for name in names:
        msg = messages[name]
        if msg.nullable:
            lists.append(name)
        lines.append(f'    "{name}": {{')
        for f in msg.fields:
            g = go.get((name, f.number))
            json_name = g.json if g else f.name
            flags = ""
            if f.repeated:
                flags += "r"
            if f.map:
                flags += "m"
            if g is not None and g.inline:
                flags += "i"
                json_name = ""
            if not f.repeated and not f.map and (g is None or g.pointer or not g.omit):
                flags += "k"
            typ = SCALARS.get(f.type, f.type)
            lines.append(f'        {f.number}: ("{json_name}", "{typ}", "{flags}"),')
        lines.append("    },")
    lines.append("}")
    lines.append("")
    lines.append("LISTS: frozenset[str] = frozenset(")
    lines.append("    {")
    for name in lists:
        lines.append(f'        "{name}",')
    lines.append("    }")
    lines.append(")")
    lines.append("")
    lines.append("KINDS: dict[tuple[str, str], str] = {")
    for root in ROOTS:
        pkg, version, kind = root.split(".")
        group = GROUPS[pkg]
        api_version = f"{group}/{version}" if group else version
        lines.append(f'    ("{api_version}", "{kind}"): "{root}",')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.stdout.write(render(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
