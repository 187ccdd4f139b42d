"""cert-manager must never renew a listener certificate before bifrost rotates it.

cert-manager renews a ``Certificate`` *in place* (same object, same Secret, new key) at its own
renewal time: ``notAfter − spec.renewBefore``, else ``spec.renewBeforePercentage`` of the
lifetime, else one third of it. bifrost rotates instead (a new Certificate attached beside the
old one, verified, drained, then the old one deleted) at its renewal time, ``notAfter −
spec.tls.renewBefore`` of the blueprint (default also one third, see
``bifrost.certificates.renewal``). Left alone the two race — by default they are due at the same
second — and cert-manager's in-place renewal swaps the key under a listener bifrost believes is
unchanged.

So bifrost sets the issuer's margin itself, on every cert-manager ``Certificate`` it renders
(:func:`with_issuer_renewal`): **half of bifrost's own margin**, in the same unit —

- ``spec.tls.renewBefore`` unset (bifrost renews with a third of the lifetime left):
  ``renewBeforePercentage: 16``;
- ``spec.tls.renewBefore.percentage: p``: ``renewBeforePercentage: max(1, p // 2)``;
- ``spec.tls.renewBefore.duration: d``: ``renewBefore: d/2`` (cert-manager's minimum is 5m).

cert-manager's renewal is then a last resort for a certificate bifrost could not rotate (the
controller down for a long time), never a race. A blueprint whose ``certificateTemplate`` sets
``renewBefore``/``renewBeforePercentage`` itself keeps its value when it is provably later than
bifrost's renewal; otherwise the blueprint is ``Valid=False`` (:func:`renewal_conflict`, checked
statically on the template's text: a literal value is compared, a templated one cannot be and is
refused too). A user never needs to know any of this.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from bifrost.api.blueprint import RenewBefore, parse_duration

__all__ = [
    "CERT_MANAGER_GROUP",
    "DEFAULT_CERT_MANAGER_LIFETIME",
    "is_cert_manager_certificate",
    "issuer_renewal",
    "renewal_conflict",
    "with_issuer_renewal",
]

CERT_MANAGER_GROUP: Final = "cert-manager.io"
#: cert-manager's default ``spec.duration`` (90 days), used to compare a template's literal
#: margins of different units when the template sets no duration.
DEFAULT_CERT_MANAGER_LIFETIME: Final = timedelta(hours=2160)
#: bifrost's default margin: a third of the lifetime (``bifrost.certificates.renewal``).
_DEFAULT_FRACTION: Final = 1 / 3

_PERCENTAGE = re.compile(r"\brenewBeforePercentage\s*:\s*(['\"]?)([^\s,}'\"#]+)\1")
_DURATION = re.compile(r"\brenewBefore\s*:\s*(['\"]?)([^\s,}'\"#]+)\1")
_LIFETIME = re.compile(r"\bduration\s*:\s*(['\"]?)([0-9][0-9.hms]*)\1")


def is_cert_manager_certificate(body: Mapping[str, Any]) -> bool:
    """``body`` is a cert-manager ``Certificate`` (any version of ``cert-manager.io``)."""
    api_version = str(body.get("apiVersion") or "")
    return body.get("kind") == "Certificate" and api_version.split("/")[0] == CERT_MANAGER_GROUP


def _go_duration(span: timedelta) -> str:
    seconds = max(int(span.total_seconds()), 1)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s"))
                   if n) or "0s"


def issuer_renewal(
    renew_before: RenewBefore | None, *, lifetime: timedelta = DEFAULT_CERT_MANAGER_LIFETIME
) -> dict[str, Any]:
    """The ``spec`` fields bifrost sets on a cert-manager Certificate for a blueprint whose
    ``spec.tls.renewBefore`` is ``renew_before`` (half of bifrost's margin; see the module
    docstring). ``lifetime`` is the certificate's requested ``spec.duration``: a
    ``renewBefore`` duration not shorter than it makes bifrost fall back to its default (a
    third), and so does the issuer's margin."""
    default = {"renewBeforePercentage": int(_DEFAULT_FRACTION * 100) // 2}
    if renew_before is None:
        return default
    if renew_before.percentage is not None:
        return {"renewBeforePercentage": max(1, renew_before.percentage // 2)}
    assert renew_before.duration is not None
    wanted = parse_duration(renew_before.duration)
    if wanted >= lifetime:  # bifrost.certificates.renewal falls back to a third too
        return default
    return {"renewBefore": _go_duration(wanted / 2)}


def with_issuer_renewal(body: dict[str, Any], renew_before: RenewBefore | None) -> dict[str, Any]:
    """``body`` with :func:`issuer_renewal`'s fields in its ``spec`` when it is a cert-manager
    Certificate that sets neither ``renewBefore`` nor ``renewBeforePercentage`` (a template that
    sets one passed :func:`renewal_conflict`); any other object unchanged. Mutates and returns
    ``body``."""
    if not is_cert_manager_certificate(body):
        return body
    spec = body.setdefault("spec", {})
    if not isinstance(spec, dict) or "renewBefore" in spec or "renewBeforePercentage" in spec:
        return body
    lifetime = DEFAULT_CERT_MANAGER_LIFETIME
    if isinstance(spec.get("duration"), str):
        with contextlib.suppress(ValueError):  # cert-manager refuses it; its status says so
            lifetime = parse_duration(spec["duration"])
    spec.update(issuer_renewal(renew_before, lifetime=lifetime))
    return body


def _bifrost_margin(renew_before: RenewBefore | None, lifetime: timedelta) -> timedelta:
    if renew_before is None:
        return lifetime * _DEFAULT_FRACTION
    return renew_before.before(lifetime)


def _describe(renew_before: RenewBefore | None) -> str:
    if renew_before is None:
        return "a third of the lifetime before notAfter (spec.tls.renewBefore unset)"
    if renew_before.percentage is not None:
        return f"{renew_before.percentage}% of the lifetime before notAfter (spec.tls.renewBefore)"
    return f"{renew_before.duration} before notAfter (spec.tls.renewBefore)"


def renewal_conflict(template: str, renew_before: RenewBefore | None) -> str | None:
    """Why ``template`` (a ``spec.tls.certificateTemplate``) would let cert-manager renew before
    bifrost rotates, with the fix; ``None`` when it sets no ``renewBefore``/
    ``renewBeforePercentage`` or sets a literal one that leaves cert-manager renewing later."""
    found = [("renewBeforePercentage", m.group(2)) for m in _PERCENTAGE.finditer(template)]
    found += [("renewBefore", m.group(2)) for m in _DURATION.finditer(template)]
    if not found:
        return None
    field, text = found[0]
    fix = ("remove it: bifrost sets it on cert-manager Certificates to half of its own margin, "
           "and spec.tls.renewBefore is where to choose that margin")
    if "{" in text:
        return (f"spec.tls.certificateTemplate sets {field} from an expression, so bifrost cannot "
                f"tell whether cert-manager would renew in place before bifrost rotates "
                f"({_describe(renew_before)}) — {fix}")
    lifetime_match = _LIFETIME.search(template)
    try:
        lifetime = (parse_duration(lifetime_match.group(2)) if lifetime_match
                    else DEFAULT_CERT_MANAGER_LIFETIME)
        if field == "renewBeforePercentage":
            issuer = lifetime * int(text) / 100
        else:
            issuer = parse_duration(text)
    except ValueError:
        return (f"spec.tls.certificateTemplate sets {field}: {text}, which is not a "
                f"{'whole percentage' if field == 'renewBeforePercentage' else 'duration'} — "
                f"{fix}")
    if issuer < _bifrost_margin(renew_before, lifetime):
        return None
    return (f"spec.tls.certificateTemplate sets {field}: {text}, so cert-manager would renew the "
            f"certificate in place before bifrost rotates it ({_describe(renew_before)}) — {fix}")
