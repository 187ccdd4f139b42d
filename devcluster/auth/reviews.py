"""The review kinds, answered and not stored: SelfSubjectAccessReview, SubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview (``authorization.k8s.io``), TokenReview and
SelfSubjectReview (``authentication.k8s.io``). ``kubectl auth can-i`` sends the first (and the
rules review for ``--list``), ``kubectl auth whoami`` the last.

Each answers 201 with the request echoed in the request's apiVersion and a ``status``: access
reviews ``allowed`` and ``reason`` (the authorizer's: ``RBAC: allowed by ClusterRoleBinding ...``);
the rules review ``resourceRules``, ``nonResourceRules``, ``incomplete`` and
``evaluationError``; TokenReview ``authenticated``, ``user``, ``audiences`` or ``error``;
SelfSubjectReview ``userInfo``. A self review is about the requester (impersonation applied), a
SubjectAccessReview about ``spec.user``/``groups``/``extra``/``uid``. Who may create which review
is RBAC's business, like any create (``system:basic-user`` lets everyone authenticated review
themselves).
"""

from __future__ import annotations

import datetime
from typing import Any, Protocol

from devcluster.auth import UserInfo
from devcluster.auth.attributes import Attributes
from devcluster.auth.tokens import ISSUER, InvalidToken, TokenAuthority
from devcluster.errors import ApiError
from devcluster.handlers import Api, RequestContext, parse_body
from devcluster.schema import FieldError, invalid_message

__all__ = ["Decider", "register_reviews"]

JSON = dict[str, Any]

_AUTHZ = "authorization.k8s.io"
_AUTHN = "authentication.k8s.io"


class Decider(Protocol):
    """What the reviews ask the cluster's authorizer."""

    def decide(self, attrs: Attributes) -> tuple[bool, str]: ...

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[JSON], list[str]]: ...


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(ctx: RequestContext) -> JSON:
    body = parse_body(ctx.raw, content_type=ctx.content_type)
    if not isinstance(body, dict):
        raise ApiError(400, "the body of the request must be an object", "BadRequest")
    return body


def _answer(ctx: RequestContext, body: JSON, status: JSON, *, stamp: bool = False) -> JSON:
    meta = dict(body.get("metadata") or {})
    meta["creationTimestamp"] = _now() if stamp else None
    out: JSON = {"kind": ctx.target.rt.kind, "apiVersion": ctx.target.api_version}
    out["metadata"] = meta
    if "spec" in body or not stamp:
        out["spec"] = body.get("spec") or {}
    out["status"] = status
    return out


def _invalid(kind_group: str, field: str, message: str) -> ApiError:
    err = FieldError("FieldValueInvalid", message, field)
    kind, _, group = kind_group.partition(".")
    return ApiError(
        422,
        invalid_message(kind_group, "", [err]),
        "Invalid",
        group=group,
        kind=kind,
        causes=[{"reason": err.reason, "message": err.message, "field": err.field}],
    )


def _attributes(ctx: RequestContext, spec: JSON, user: UserInfo) -> Attributes:
    res = spec.get("resourceAttributes")
    non = spec.get("nonResourceAttributes")
    kind_group = f"{ctx.target.rt.kind}.{_AUTHZ}"
    if bool(res) == bool(non):
        raise _invalid(
            kind_group,
            "spec.resourceAttributes",
            'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes '
            "must be specified",
        )
    if isinstance(non, dict) and non:
        verb, path = str(non.get("verb") or ""), str(non.get("path") or "")
        return Attributes(user, verb, resource_request=False, path=path)
    if not isinstance(res, dict):
        raise ApiError(400, "spec.resourceAttributes must be an object", "BadRequest")
    return Attributes(
        user,
        str(res.get("verb") or ""),
        True,
        str(res.get("group") or ""),
        str(res.get("version") or ""),
        str(res.get("resource") or ""),
        str(res.get("subresource") or ""),
        str(res.get("namespace") or ""),
        str(res.get("name") or ""),
    )


def _access_status(decider: Decider, attrs: Attributes) -> JSON:
    allowed, reason = decider.decide(attrs)
    status: JSON = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


def _subject(spec: JSON) -> UserInfo:
    extra = spec.get("extra") or {}
    return UserInfo(
        str(spec.get("user") or ""),
        tuple(str(g) for g in spec.get("groups") or []),
        str(spec.get("uid") or ""),
        {str(k): tuple(str(x) for x in v or []) for k, v in extra.items()},
    )


def _rules_status(decider: Decider, user: UserInfo, namespace: str) -> JSON:
    rules, errors = decider.rules_for(user, namespace)
    resource: list[JSON] = []
    non_resource: list[JSON] = []
    for rule in rules:
        if rule.get("resources"):
            r: JSON = {"verbs": list(rule.get("verbs") or [])}
            for k in ("apiGroups", "resources", "resourceNames"):
                if rule.get(k):
                    r[k] = list(rule[k])
            resource.append(r)
        if rule.get("nonResourceURLs"):
            urls = list(rule["nonResourceURLs"])
            non_resource.append({"verbs": list(rule.get("verbs") or []), "nonResourceURLs": urls})
    status: JSON = {
        "resourceRules": resource,
        "nonResourceRules": non_resource,
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return status


def register_reviews(api: Api, decider: Decider, tokens: TokenAuthority) -> None:
    """Answer the six review kinds on ``api`` with ``decider`` and ``tokens``."""

    def self_access(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx)
        spec = body.get("spec") or {}
        attrs = _attributes(ctx, spec, ctx.user)
        return 201, _answer(ctx, body, _access_status(decider, attrs))

    def subject_access(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx)
        spec = body.get("spec") or {}
        if not spec.get("user") and not spec.get("groups"):
            raise _invalid(
                f"{ctx.target.rt.kind}.{_AUTHZ}",
                "spec.user",
                'Invalid value: "": at least one of user or group must be specified',
            )
        attrs = _attributes(ctx, spec, _subject(spec))
        return 201, _answer(ctx, body, _access_status(decider, attrs))

    def local_access(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx)
        ns = ctx.target.namespace or ""
        spec = dict(body.get("spec") or {})
        if spec.get("nonResourceAttributes"):
            raise _invalid(
                f"{ctx.target.rt.kind}.{_AUTHZ}",
                "spec.nonResourceAttributes",
                'Invalid value: "": disallowed on this kind of request',
            )
        res = dict(spec.get("resourceAttributes") or {})
        if res.get("namespace") and res["namespace"] != ns:
            raise ApiError(
                400,
                f"spec.resourceAttributes.namespace must match namespace: {ns}",
                "BadRequest",
            )
        res["namespace"] = ns
        spec["resourceAttributes"] = res
        if not spec.get("user") and not spec.get("groups"):
            raise _invalid(
                f"{ctx.target.rt.kind}.{_AUTHZ}",
                "spec.user",
                'Invalid value: "": at least one of user or group must be specified',
            )
        body = {**body, "spec": spec}
        body["metadata"] = {**(body.get("metadata") or {}), "namespace": ns}
        attrs = _attributes(ctx, spec, _subject(spec))
        return 201, _answer(ctx, body, _access_status(decider, attrs))

    def self_rules(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx)
        spec = body.get("spec") or {}
        status = _rules_status(decider, ctx.user, str(spec.get("namespace") or ""))
        return 201, _answer(ctx, body, status)

    def token_review(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx)
        spec = body.get("spec") or {}
        token = str(spec.get("token") or "")
        if not token:
            raise ApiError(400, "token is required for TokenReview in authentication", "BadRequest")
        audiences = [str(a) for a in spec.get("audiences") or []]
        try:
            user = tokens.authenticate(token, audiences or None)
        except InvalidToken as e:
            return 201, _answer(ctx, body, {"user": {}, "error": str(e)})
        status: JSON = {
            "authenticated": True,
            "user": user.as_json(),
            "audiences": audiences or [ISSUER],
        }
        return 201, _answer(ctx, body, status)

    def self_subject(ctx: RequestContext) -> tuple[int, JSON]:
        body = _body(ctx) if ctx.raw else {}
        return 201, _answer(ctx, body, {"userInfo": ctx.user.as_json()}, stamp=True)

    api.handlers[(_AUTHZ, "selfsubjectaccessreviews", None)] = self_access
    api.handlers[(_AUTHZ, "subjectaccessreviews", None)] = subject_access
    api.handlers[(_AUTHZ, "localsubjectaccessreviews", None)] = local_access
    api.handlers[(_AUTHZ, "selfsubjectrulesreviews", None)] = self_rules
    api.handlers[(_AUTHN, "tokenreviews", None)] = token_review
    api.handlers[(_AUTHN, "selfsubjectreviews", None)] = self_subject
