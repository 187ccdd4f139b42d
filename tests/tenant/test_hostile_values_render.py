"""Hostile tenant values through every template of ``examples/`` (and ``probe/``): values are data.

For each injection point a tenant controls (every values leaf the templates read, through the
namespace or Gateway policy the example uses; the Gateway's name; each listener hostname; each
attached HTTPRoute's name, hostnames and first path match — see ``scenes.py``) the scene is
rendered once with a benign marker and once with each hostile value of ``corpus.py``. Then, for
every rendered object (children, listener certificates, route children):

- the same objects exist (no extra, no missing, no extra documents) with the same apiVersion and
  kind, and ``metadata.namespace`` is absent or the Gateway's;
- the structure is the same: no key appears or disappears at any level, except a key the marker
  itself was part of; lists keep their length;
- where the marker appeared, the hostile render holds the value verbatim: exactly the value where
  the marker was a whole scalar, the marker replaced by the value inside a longer string;
- everywhere else nothing changed (for a Gateway or route name, strings derived from it through
  ``dns_label`` may differ but stay strings).

A render may refuse a name/hostname/route field or a structured value with a ``RenderError`` — then
the error must not quote the value (redaction). A *string* value set through a policy must never
be refused: the schema (``spec.values``) decides what a tenant may set, not the renderer.
"""

from __future__ import annotations

from typing import Any

import pytest
from corpus import CORPUS, TEXT_CORPUS, Hostile
from scenes import MARKER, Outcome, Point, injection_points, render_scene

from bifrost.render import RenderError

POINTS = injection_points()

CASES = [
    pytest.param(point, benign, hostile, id=f"{point.id}/{hostile.id}")
    for point, benign in POINTS
    for hostile in (TEXT_CORPUS if point.text_only else CORPUS)
]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} chars)"


def _fragments(value: Any) -> list[str]:
    """Pieces of a hostile value distinctive enough that a message quoting them leaks it."""
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in (*_fragments(k), *_fragments(v))]
    if isinstance(value, list):
        return [f for v in value for f in _fragments(v)]
    if not isinstance(value, str):
        return []
    out = [value] if len(value.strip()) >= 5 else []
    out += [line.strip() for line in value.splitlines() if len(line.strip()) >= 8]
    return out


def compare(benign: Any, hostile: Any, value: Any, *, strict_strings: bool,
            path: str = "") -> list[str]:
    """Problems of ``hostile`` against ``benign`` with the marker replaced by ``value``."""
    where = path or "<root>"
    if isinstance(benign, str) and MARKER in benign:
        if benign == MARKER:
            if hostile == value and type(hostile) is type(value):
                return []
            if not isinstance(value, str) and isinstance(hostile, str):
                return []  # a structured value in a quoted position: its string form
            return [f"{where}: holds {_short(hostile)}, not the value verbatim"]
        if not isinstance(value, str):
            return [] if isinstance(hostile, str) else [f"{where}: not a string any more"]
        expected = benign.replace(MARKER, value)
        if hostile != expected:
            return [f"{where}: holds {_short(hostile)}, expected {_short(expected)}"]
        return []
    if isinstance(benign, dict):
        if not isinstance(hostile, dict):
            return [f"{where}: a {type(hostile).__name__}, not a mapping"]
        problems: list[str] = []
        expected_keys = {
            (k.replace(MARKER, value) if isinstance(k, str) and MARKER in k
             and isinstance(value, str) else k): k
            for k in benign
        }
        extra = sorted(map(str, set(hostile) - set(expected_keys)))
        missing = sorted(map(str, set(expected_keys) - set(hostile)))
        if extra:
            problems.append(f"{where}: extra keys {[_short(k) for k in extra]}")
        if missing:
            problems.append(f"{where}: missing keys {[_short(k) for k in missing]}")
        for hkey, bkey in expected_keys.items():
            if hkey in hostile:
                problems += compare(benign[bkey], hostile[hkey], value,
                                    strict_strings=strict_strings, path=f"{path}.{bkey}")
        return problems
    if isinstance(benign, list):
        if not isinstance(hostile, list) or len(hostile) != len(benign):
            return [f"{where}: {_short(hostile)} is not a list of {len(benign)}"]
        return [p for i, (b, h) in enumerate(zip(benign, hostile, strict=True))
                for p in compare(b, h, value, strict_strings=strict_strings, path=f"{path}[{i}]")]
    if type(hostile) is not type(benign):
        return [f"{where}: {_short(hostile)} is a {type(hostile).__name__}, "
                f"was a {type(benign).__name__}"]
    if hostile != benign and (strict_strings or not isinstance(benign, str)):
        return [f"{where}: changed from {_short(benign)} to {_short(hostile)}"]
    return []


def check(point: Point, benign: dict[str, Outcome], hostile: dict[str, Outcome],
          value: Any) -> list[str]:
    problems: list[str] = []
    if set(hostile) != set(benign):
        problems.append(f"objects {sorted(hostile)} instead of {sorted(benign)}")
    namespace = point.scene.namespace
    for key in sorted(set(hostile) & set(benign)):
        b, h = benign[key], hostile[key]
        if isinstance(h, RenderError):
            leaked = [f for f in _fragments(value) if f in str(h) or f in h.message]
            if leaked:
                problems.append(f"{key}: the RenderError quotes the tenant's value: {h}")
            if point.is_values and isinstance(value, str):
                problems.append(f"{key}: a string value was refused by the renderer "
                                f"(it must be held verbatim): {_short(str(h))}")
            continue
        if h is None or b is None:
            if (h is None) != (b is None):
                problems.append(f"{key}: {'skipped' if h is None else 'rendered'} with the value, "
                                f"{'skipped' if b is None else 'rendered'} with the marker")
            continue
        assert isinstance(b, dict)
        for field in ("apiVersion", "kind"):
            if h.get(field) != b.get(field):
                problems.append(f"{key}: {field} {_short(h.get(field))} instead of "
                                f"{b.get(field)!r}")
        raw_meta = h.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("namespace", namespace) != namespace:
            problems.append(f"{key}: metadata.namespace {_short(meta.get('namespace'))}, "
                            f"outside the Gateway's namespace {namespace!r}")
        problems += [f"{key}: {p}" for p in
                     compare(b, h, value, strict_strings=point.is_values)]
    return problems


#: Every place the example templates (and probe/) read a tenant's input; a point missing from
#: ``POINTS`` means a benign value no longer reaches the rendered objects there.
EXPECTED_POINTS = {
    *(f"cloud-edge:{gw}/{channel}:{key}"
      for gw, channel in (("storefront", "ns-policy"), ("backoffice", "gw-policy"))
      for key in ("region", "vpcId", "subnetIds", "hostedZoneId", "allowedCidrs", "sslPolicy",
                  "idleTimeout", "dnsTtl", "accessLogs.bucket", "accessLogs.prefix",
                  "waf.webAclArn")),
    *(f"cloud-edge:{gw}/{kind}" for gw in ("storefront", "backoffice")
      for kind in ("gateway-name", "listener-hostname:0")),
    # the exploit: the namespace policy's replicas, printed into the settings ConfigMap
    "in-cluster:edge/ns-policy:replicas",
    "in-cluster:edge/ns-policy:childClass",
    "in-cluster:edge/ns-policy:issuer",
    "in-cluster:edge/gateway-name",
    "in-cluster:edge/listener-hostname:0",
    "tenant-probe:web/ns-policy:text",
    "tenant-probe:web/gw-policy:text",
    "tenant-probe:web/gw-policy:note",
    "tenant-probe:web/gateway-name",
    "tenant-probe:web/listener-hostname:0",
    "tenant-probe:web/route-name:0",
    "tenant-probe:web/route-hostname:0.0",
    "tenant-probe:web/route-hostname:0.1",
    "tenant-probe:web/route-path:0",
}


def test_the_corpus_reaches_every_injection_point() -> None:
    found = {p.id for p, _ in POINTS}
    assert not EXPECTED_POINTS - found, (
        f"the benign marker no longer reaches: {sorted(EXPECTED_POINTS - found)}")
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(("point", "benign", "hostile"), CASES)
def test_a_hostile_value_stays_data(point: Point, benign: dict[str, Outcome],
                                   hostile: Hostile) -> None:
    rendered = render_scene(point.scene, point.inputs(hostile.value))
    problems = check(point, benign, rendered, hostile.value)
    assert not problems, (
        f"{hostile.id} ({hostile.attacks}) at {point.id}:\n  " + "\n  ".join(problems[:12])
    )
