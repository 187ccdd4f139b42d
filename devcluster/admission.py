"""Validation the API server applies to every object: names, and the rules for Events and Leases.

These are the checks real clusters reject requests with and that bifrost must therefore never
trip over: DNS names, the core/v1 Event namespace rules (a cluster-scoped subject needs the Event
in ``default``), the required fields of events.k8s.io/v1 Events, and MicroTime formatting.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from devcluster.schema import FieldError

__all__ = [
    "normalize_micro_time",
    "validate_event_core",
    "validate_event_v1",
    "validate_name",
]

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate_name(
    name: str, *, label: bool = False, path_segment: bool = False
) -> list[FieldError]:
    """DNS-1123 subdomain (or label, for Namespaces) validation of ``metadata.name``;
    ``path_segment``: only what a URL path segment needs (RBAC kinds, ``system:basic-user``)."""
    errs: list[FieldError] = []
    if path_segment:
        bad = [f"may not be '{name}'"] if name in (".", "..") else []
        bad += [f"may not contain '{c}'" for c in "/%" if c in name]
        return [
            FieldError("FieldValueInvalid", f"Invalid value: {_quote(name)}: {b}", "metadata.name")
            for b in bad
        ]
    limit = 63 if label else 253
    if len(name) > limit:
        errs.append(
            FieldError(
                "FieldValueInvalid",
                f"Invalid value: {_quote(name)}: must be no more than {limit} characters",
                "metadata.name",
            )
        )
    rx, msg = (_LABEL_RE, _LABEL_MSG) if label else (_SUBDOMAIN_RE, _SUBDOMAIN_MSG)
    if not rx.match(name):
        errs.append(
            FieldError(
                "FieldValueInvalid", f"Invalid value: {_quote(name)}: {msg}", "metadata.name"
            )
        )
    return errs


def normalize_micro_time(value: Any) -> Any:
    """Any RFC 3339 time -> ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), as MicroTime serialises."""
    if not isinstance(value, str) or not value:
        return value
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_time(value: Any) -> Any:
    """Any RFC 3339 time -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), as metav1.Time serialises."""
    if not isinstance(value, str) or not value:
        return value
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_event_core(ev: dict[str, Any], cluster_scoped_subject: bool) -> list[FieldError]:
    """core/v1 Event rules (``ValidateEventCreate`` for the v1 API)."""
    errs: list[FieldError] = []
    ns = (ev.get("metadata") or {}).get("namespace") or ""
    involved = ev.get("involvedObject") or {}
    inv_ns = involved.get("namespace") or ""
    if ev.get("eventTime"):
        if not ev.get("reportingComponent"):
            errs.append(FieldError("FieldValueRequired", "Required value", "reportingComponent"))
        if cluster_scoped_subject or not inv_ns:
            if ns not in ("default", "kube-system", ""):
                errs.append(
                    FieldError(
                        "FieldValueInvalid",
                        f"Invalid value: {_quote(inv_ns)}: does not match event.namespace",
                        "involvedObject.namespace",
                    )
                )
        elif inv_ns != ns:
            errs.append(
                FieldError(
                    "FieldValueInvalid",
                    f"Invalid value: {_quote(inv_ns)}: does not match event.namespace",
                    "involvedObject.namespace",
                )
            )
        return errs
    if (cluster_scoped_subject or not inv_ns) and ns in ("default", ""):
        return errs
    if inv_ns != ns:
        errs.append(
            FieldError(
                "FieldValueInvalid",
                f"Invalid value: {_quote(inv_ns)}: does not match event.namespace",
                "involvedObject.namespace",
            )
        )
    return errs


def validate_event_v1(ev: dict[str, Any]) -> list[FieldError]:
    """events.k8s.io/v1 Event rules."""
    errs: list[FieldError] = []
    for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not ev.get(f):
            errs.append(FieldError("FieldValueRequired", "Required value", f))
    t = ev.get("type")
    if t not in ("Normal", "Warning"):
        errs.append(
            FieldError(
                "FieldValueInvalid",
                f"Invalid value: {_quote(str(t or ''))}: has invalid value: {t or ''}",
                "type",
            )
        )
    note = ev.get("note")
    if isinstance(note, str) and len(note.encode()) > 1024:
        errs.append(
            FieldError("FieldValueTooLong", "Too long: may not be more than 1024 bytes", "note")
        )
    return errs
