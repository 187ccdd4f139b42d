"""The static half of confinement: what the blueprint's status can say without rendering.

Only literal text counts (a template's one top-level ``kind:``/``apiVersion:`` and a ``namespace:``
directly under ``metadata:``); anything templated is left to the render-time check, so a valid
blueprint is never called invalid for what a Gateway's values might do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bifrost.api.conditions import BlueprintReason
from bifrost.render.confinement import AllowRule, Confinement, static_violations
from bifrost.status.blueprints import blueprint_problems

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SECRET_IN_KUBE_SYSTEM = """\
apiVersion: v1
kind: Secret
metadata:
  name: "{{ gateway.metadata.name }}-leak"
  namespace: kube-system
stringData: {a: b}
"""


NO_OPT_INS = Confinement()


def _one(template: str, confinement: Confinement = NO_OPT_INS, **kw: Any) -> list[str]:
    return [v.message for v in static_violations([("c", "spec.children[c].template", template)],
                                                 confinement, **kw)]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (SECRET_IN_KUBE_SYSTEM,
         "child 'c' (Secret in namespace kube-system) is outside the Gateway's namespace: add "
         '{group: "", kind: Secret, namespaces: [kube-system]} to spec.confinement.allow'),
        # quoted literals count
        ('apiVersion: "v1"\nkind: "ConfigMap"\nmetadata:\n  name: x\n  namespace: "other"\n',
         "child 'c' (ConfigMap in namespace other) is outside the Gateway's namespace: add "
         '{group: "", kind: ConfigMap, namespaces: [other]} to spec.confinement.allow'),
        ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
         "  name: x\n",
         "child 'c' (ClusterRoleBinding.rbac.authorization.k8s.io) is cluster-scoped, refused "
         "unless the blueprint allows the kind cluster-wide: add {group: "
         "rbac.authorization.k8s.io, kind: ClusterRoleBinding, clusterScoped: true} to "
         "spec.confinement.allow"),
        ("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n",
         "child 'c' (ServiceAccount in the Gateway's namespace) is an identity, refused unless "
         'the blueprint opts in to the kind: add {group: "", kind: ServiceAccount} to '
         "spec.confinement.allow"),
        ("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\nmetadata:\n"
         "  name: x\n  annotations: {kubernetes.io/service-account.name: default}\n",
         "child 'c' (Secret in the Gateway's namespace) is a Secret of type "
         "kubernetes.io/service-account-token (it mints a ServiceAccount token), refused unless "
         'the blueprint opts in to the kind: add {group: "", kind: Secret} to '
         "spec.confinement.allow"),
        # a sensitive group whose scope the table does not know is refused wherever it lands
        ("apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\n"
         "metadata: {name: x}\n",
         "child 'c' (MutatingAdmissionPolicy.admissionregistration.k8s.io in the Gateway's "
         "namespace) is admission control, refused unless the blueprint opts in to the kind: add"
         " {group: admissionregistration.k8s.io, kind: MutatingAdmissionPolicy} to "
         "spec.confinement.allow"),
    ],
)
def test_literal_violations_are_known_without_rendering(template: str, expected: str) -> None:
    assert _one(template) == [expected]


@pytest.mark.parametrize(
    "template",
    [
        # ordinary kinds in the Gateway's namespace
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        # the namespace comes from a value: decided when rendered
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  namespace: "{{ values.ns }}"\n',
        # the kind comes from a value
        "apiVersion: v1\nkind: {{ values.kind }}\nmetadata:\n  name: x\n  namespace: kube-system\n",
        # two kinds behind a condition: not one literal kind
        "apiVersion: v1\n{% if values.a %}\nkind: Secret\n{% else %}\nkind: ConfigMap\n"
        "{% endif %}\nmetadata:\n  name: x\n  namespace: kube-system\n",
        # a namespace deeper than metadata's own keys is not the object's namespace
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n"
        "    namespace: kube-system\ndata:\n  namespace: kube-system\n",
        # a CRD kind of unknown scope, no literal namespace: discovery decides at apply time
        "apiVersion: elbv2.aws.upbound.io/v1beta1\nkind: LB\nmetadata:\n  name: x\n",
    ],
)
def test_nothing_templated_or_ordinary_is_called_a_violation(template: str) -> None:
    assert _one(template) == []


def test_opt_ins_clear_static_violations() -> None:
    allow = Confinement((
        AllowRule("", "Secret", namespaces=("kube-system",)),
        AllowRule("rbac.authorization.k8s.io", "ClusterRoleBinding", cluster_scoped=True),
    ))
    assert _one(SECRET_IN_KUBE_SYSTEM, allow) == []
    assert _one("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                "metadata: {name: x}\n", allow) == []
    # the certificate's namespace is forced to the Gateway's: only kind and scope count
    assert _one(SECRET_IN_KUBE_SYSTEM, namespace_forced=True) == []


def _blueprint(children: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gateway.bifrost.dev/v1alpha1", "kind": "GatewayClassBlueprint",
            "metadata": {"name": "b", "generation": 1},
            "spec": {"children": children, **spec}}


def test_blueprint_status_names_the_child_not_confined() -> None:
    bp = _blueprint([
        {"id": "settings", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
        {"id": "leak", "template": SECRET_IN_KUBE_SYSTEM},
    ])
    problems = blueprint_problems(bp)
    assert [(p.reason, p.message) for p in problems] == [(
        BlueprintReason.CHILD_NOT_CONFINED,
        "child 'leak' (Secret in namespace kube-system) is outside the Gateway's namespace: add "
        '{group: "", kind: Secret, namespaces: [kube-system]} to spec.confinement.allow',
    )]
    allowed = _blueprint(bp["spec"]["children"], confinement={"allow": [
        {"group": "", "kind": "Secret", "namespaces": ["kube-system"]}]})
    assert blueprint_problems(allowed) == []


def test_blueprint_status_checks_route_children_and_the_certificate_template() -> None:
    bp = _blueprint(
        [], routeChildren=[{"id": "rb", "template": "apiVersion: rbac.authorization.k8s.io/v1\n"
                                                    "kind: RoleBinding\nmetadata: {name: x}\n"}],
        tls={"certificateTemplate": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"})
    messages = [p.message for p in blueprint_problems(bp)]
    assert len(messages) == 2
    assert messages[0].startswith("child 'rb' (RoleBinding.rbac.authorization.k8s.io in the "
                                  "Gateway's namespace) is RBAC")
    assert messages[1].startswith("child 'certificate' (Namespace) is cluster-scoped")


def test_an_invalid_confinement_makes_the_blueprint_invalid() -> None:
    bp = _blueprint([], confinement={"allow": [{"group": "", "kind": "not a kind"}]})
    (problem,) = blueprint_problems(bp)
    assert problem.reason is BlueprintReason.INVALID
    assert "confinement" in problem.message


@pytest.mark.parametrize("example", ["in-cluster", "cloud-edge"])
def test_the_examples_are_confined(example: str) -> None:
    blueprint = yaml.safe_load((EXAMPLES / example / "10-blueprint.yaml").read_text())
    assert [p for p in blueprint_problems(blueprint)
            if p.reason is BlueprintReason.CHILD_NOT_CONFINED] == []
