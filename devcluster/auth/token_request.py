"""``POST .../serviceaccounts/<name>/token`` (TokenRequest, what ``kubectl create token``
sends): a bound token for the ServiceAccount, answered 201 with the request's ``spec`` defaulted
and ``status.token`` / ``status.expirationTimestamp``.

As upstream: ``spec.audiences`` defaults to the API server's (its issuer) and
``spec.expirationSeconds`` to 3600; less than 600 seconds is a 422; ``spec.boundObjectRef`` may
name a Pod (running as this ServiceAccount) or a Secret in the namespace, whose uid must match
when given; the token then dies with that object.
"""

from __future__ import annotations

import datetime
from typing import Any

from devcluster.auth.tokens import ISSUER, BoundObject, TokenAuthority
from devcluster.errors import ApiError
from devcluster.handlers import Api, RequestContext, parse_body
from devcluster.schema import FieldError, invalid_message

__all__ = ["register_token_request"]

JSON = dict[str, Any]

_DEFAULT_SECONDS = 3600
_MIN_SECONDS = 600
_MAX_SECONDS = 1 << 32


def _rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(name: str, field: str, value: Any, message: str) -> ApiError:
    err = FieldError("FieldValueInvalid", f"Invalid value: {value}: {message}", field)
    return ApiError(
        422,
        invalid_message("TokenRequest.authentication.k8s.io", name, [err]),
        "Invalid",
        name=name,
        group="authentication.k8s.io",
        kind="TokenRequest",
        causes=[{"reason": err.reason, "message": err.message, "field": err.field}],
    )


def _bound(api: Api, ns: str, sa_name: str, ref: Any) -> BoundObject | None:
    if not isinstance(ref, dict) or not ref:
        return None
    kind, av = ref.get("kind", ""), ref.get("apiVersion", "")
    name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
    if av != "v1" or kind not in ("Pod", "Secret"):
        group, _, version = av.rpartition("/")
        raise ApiError(
            400,
            f"cannot bind token to object of type {group}/{version}, Kind={kind}",
            "BadRequest",
        )
    plural = kind.lower() + "s"
    obj = api.store.get(("", plural), ns, name)
    if obj is None:
        raise ApiError(404, f'{plural} "{name}" not found', name=name, kind=plural)
    actual = str(obj["metadata"].get("uid") or "")
    if kind == "Pod":
        runs_as = (obj.get("spec") or {}).get("serviceAccountName") or "default"
        if runs_as != sa_name:
            raise ApiError(
                400,
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                f'serviceaccount "{runs_as}"',
                "BadRequest",
            )
    if uid and uid != actual:
        raise ApiError(
            409,
            f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object '
            f"reference ({uid}) does not match the UID in record ({actual}). The object might "
            "have been deleted and then recreated",
            "Conflict",
            name=name,
            kind=kind,
        )
    return BoundObject(kind, name, actual)


def register_token_request(api: Api, tokens: TokenAuthority) -> None:
    """Answer ``serviceaccounts/token`` on ``api``."""

    def handle(ctx: RequestContext) -> tuple[int, JSON]:
        t = ctx.target
        ns, name = t.namespace or "", t.name or ""
        if ctx.verb != "create":
            raise ApiError(405, "method not allowed", "MethodNotAllowed")
        body = parse_body(ctx.raw, content_type=ctx.content_type) if ctx.raw else {}
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object", "BadRequest")
        sa = api.store.get(("", "serviceaccounts"), ns, name)
        if sa is None:
            raise ApiError(
                404, f'serviceaccounts "{name}" not found', name=name, kind="serviceaccounts"
            )
        spec = dict(body.get("spec") or {})
        audiences = [str(a) for a in spec.get("audiences") or []] or [ISSUER]
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = _DEFAULT_SECONDS
        if not isinstance(seconds, int) or seconds < _MIN_SECONDS:
            raise _invalid(
                name,
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration less than 10 minutes",
            )
        if seconds > _MAX_SECONDS:
            raise _invalid(
                name,
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration larger than 2^32 seconds",
            )
        bound = _bound(api, ns, name, spec.get("boundObjectRef"))
        token, exp = tokens.issue(sa, audiences=audiences, expiration_seconds=seconds, bound=bound)
        spec["audiences"] = audiences
        spec["expirationSeconds"] = seconds
        spec.setdefault("boundObjectRef", None)
        meta = dict(body.get("metadata") or {})
        meta.update({"name": name, "namespace": ns, "creationTimestamp": None})
        return 201, {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": meta,
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": _rfc3339(exp)},
        }

    api.handlers[("", "serviceaccounts", "token")] = handle
