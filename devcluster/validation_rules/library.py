"""The functions a Kubernetes API server (v1.31) offers to CRD validation rules, for the ``cel``
package.

``cel`` (the Rust CEL interpreter) implements the CEL core: operators, ``size``, ``has``, the
macros ``all``/``exists``/``exists_one``/``map``/``filter``, ``matches``, ``contains``,
``startsWith``/``endsWith``, conversions, durations, timestamps and optionals (without the ``.?``
syntax). A Kubernetes API server adds libraries, reproduced here in Python (names and behaviour
from ``k8s.io/apiserver/pkg/cel/library`` and cel-go's ``ext`` package; a receiver call such as
``s.split("/")`` reaches the function with the receiver first):

* strings (cel-go ``ext.Strings`` v2): ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``,
  ``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``, ``strings.quote``,
  ``format``;
* sets: ``sets.contains``, ``sets.equivalent``, ``sets.intersects``;
* lists: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``;
* regex: ``find``, ``findAll``, and ``matches`` itself, all with RE2 (as cel-go): linear time,
  compiled once per pattern;
* URLs: ``url``, ``isURL``, ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
  ``getEscapedPath``, ``getQuery``;
* IP and CIDR: ``ip``, ``isIP``, ``ip.isCanonical``, ``family``, ``isUnspecified``,
  ``isLoopback``, ``isLinkLocalMulticast``, ``isLinkLocalUnicast``, ``isGlobalUnicast``,
  ``cidr``, ``isCIDR``, ``containsIP``, ``containsCIDR``, ``prefixLength``, ``masked``, and
  ``string()`` of an IP or CIDR;
* quantities: ``quantity``, ``isQuantity``, ``sign``, ``isGreaterThan``, ``isLessThan``,
  ``compareTo``, ``asApproximateFloat``, ``asInteger``, ``isInteger``, ``add``, ``sub``;
* formats: ``format.named``, ``format.dns1123Label()`` … ``.validate()`` (``cel_formats``).

IP, CIDR, URL and quantity values travel through CEL as tagged maps (``{"__celtype__": ...}``)
holding a canonical form, so ``==`` compares them as upstream does. A function fails by raising:
CEL reports the message, and the rule's error shows it as the API server shows its own.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import cel
import re2
from cel import stdlib

from devcluster.validation_rules.formats import FUNCTIONS as FORMAT_FUNCTIONS

__all__ = ["FUNCTIONS", "KNOWN_FUNCTIONS", "KNOWN_NAMES", "new_context", "reachable"]

TYPE_KEY = "__celtype__"
IP_TYPE = "net.IP"
CIDR_TYPE = "net.CIDR"
URL_TYPE = "kubernetes.URL"
QUANTITY_TYPE = "kubernetes.Quantity"

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        t = value.get(TYPE_KEY)
        return t if isinstance(t, str) else None
    return None


def _no_overload() -> TypeError:
    return TypeError("no such overload")


# -------------------------------------------------------------------------------- strings, lists


def _index_of(receiver: Any, item: Any, offset: int | None = None) -> int:
    if isinstance(receiver, str):
        return stdlib.index_of(receiver, item, 0 if offset is None else offset)
    if isinstance(receiver, list) and offset is None:
        for i, v in enumerate(receiver):
            if v == item:
                return i
        return -1
    raise _no_overload()


def _last_index_of(receiver: Any, item: Any, offset: int | None = None) -> int:
    if isinstance(receiver, str):
        return stdlib.last_index_of(receiver, item, offset)
    if isinstance(receiver, list) and offset is None:
        for i in range(len(receiver) - 1, -1, -1):
            if receiver[i] == item:
                return i
        return -1
    raise _no_overload()


def _is_sorted(items: list[Any]) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _sum(items: list[Any]) -> Any:
    if not isinstance(items, list):
        raise _no_overload()
    return stdlib.sum_(items)


def _min(items: list[Any]) -> Any:
    if not isinstance(items, list):
        raise _no_overload()
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not isinstance(items, list):
        raise _no_overload()
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v) if not v.is_integer() else str(int(v)) if abs(v) < 1e21 else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if _tag(v) is not None:
            return str(v.get("value", ""))
        pairs = (f"{_format_value(k)}: {_format_value(x)}" for k, x in v.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(v, datetime.timedelta):
        return f"{v.total_seconds():g}s"
    if isinstance(v, datetime.datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


_VERB = re.compile(r"%(?:\.(\d+))?([sdfeboxX%])")


def _string_format(template: str, args: list[Any]) -> str:
    """cel-go's ``"...".format([args])`` for the verbs ``%s %d %f %e %b %o %x %X %%``."""
    if not isinstance(template, str) or not isinstance(args, list):
        raise _no_overload()
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        precision, verb = m.group(1), m.group(2)
        if verb == "%":
            return "%"
        try:
            v = next(it)
        except StopIteration:
            raise ValueError(f"index {len(args)} out of range") from None
        if verb == "s":
            return _format_value(v)
        if verb == "d":
            return str(int(v))
        if verb == "f":
            return f"{float(v):.{int(precision or 6)}f}"
        if verb == "e":
            return f"{float(v):.{int(precision or 6)}e}"
        if verb == "b":
            return format(int(v), "b")
        if verb == "o":
            return format(int(v), "o")
        if isinstance(v, str | bytes):
            raw = v.encode() if isinstance(v, str) else v
            return raw.hex() if verb == "x" else raw.hex().upper()
        return format(int(v), verb)

    return _VERB.sub(one, template)


# -------------------------------------------------------------------------------- regex


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """RE2, as cel-go uses: linear time, so no pattern can hang the server."""
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise ValueError(f"Illegal regex: {exc}") from None


def _matches(s: str, pattern: str) -> bool:
    """``s.matches(pattern)``: rules reach it as ``s.__matches(pattern)`` (see
    :func:`.source.route_matches`): the ``cel`` package's own ``matches`` compiles
    the pattern on every call (~15 us); this one once."""
    if not isinstance(s, str) or not isinstance(pattern, str):
        raise _no_overload()
    # the UTF-8 bytes match exactly where the string does, without the wrapper mapping each
    # match's byte offsets back to characters (~3 us -> ~1 us)
    return _regex(pattern).search(s.encode("utf-8")) is not None


def _find(s: str, pattern: str) -> str:
    m = _regex(pattern).search(s)
    return str(m.group(0)) if m else ""


def _find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    out = [str(m.group(0)) for m in _regex(pattern).finditer(s)]
    return out if limit < 0 else out[:limit]


# -------------------------------------------------------------------------------- URLs

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _parse_url(s: str) -> dict[str, Any]:
    """Go's ``url.ParseRequestURI``: an absolute URI or an absolute path."""
    if not isinstance(s, str):
        raise _no_overload()
    if not (s.startswith("/") or _SCHEME.match(s)) or any(c in s for c in " \t\r\n"):
        raise ValueError(
            f'URL parse error during conversion from string: parse "{s}": invalid URI for request'
        )
    parts = urllib.parse.urlsplit(s, allow_fragments=False)
    return {
        TYPE_KEY: URL_TYPE,
        "value": s,
        "scheme": parts.scheme,
        "host": parts.netloc.rsplit("@", 1)[-1],
        "path": parts.path,
        "query": parts.query,
    }


def _url(s: str) -> dict[str, Any]:
    return _parse_url(s)


def _is_url(s: str) -> bool:
    try:
        _parse_url(s)
    except ValueError:
        return False
    return True


def _url_part(u: Any, part: str) -> Any:
    if _tag(u) != URL_TYPE:
        raise _no_overload()
    return u[part]


def _hostname(u: Any) -> str:
    host = str(_url_part(u, "host"))
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(u: Any) -> str:
    host = str(_url_part(u, "host"))
    tail = host[host.rfind("]") + 1 :] if host.startswith("[") else host
    return tail.rsplit(":", 1)[1] if ":" in tail else ""


def _escaped_path(u: Any) -> str:
    path = urllib.parse.unquote(str(_url_part(u, "path")))
    return urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")


def _query(u: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(str(_url_part(u, "query")), keep_blank_values=True)


# -------------------------------------------------------------------------------- IP and CIDR

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(raw: str) -> _Address:
    if not isinstance(raw, str):
        raise _no_overload()
    if "%" in raw:
        raise ValueError(f'IP address "{raw}" with zone value is not allowed')
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError as exc:
        raise ValueError(
            f'IP Address "{raw}" parse error during conversion from string: {exc}'
        ) from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return addr


def _ip_value(addr: _Address) -> dict[str, Any]:
    return {TYPE_KEY: IP_TYPE, "value": str(addr)}


def _address(v: Any) -> _Address:
    if _tag(v) == IP_TYPE:
        return ipaddress.ip_address(str(v["value"]))
    raise _no_overload()


def _ip(v: Any) -> dict[str, Any]:
    """``ip("10.0.0.1")``, or ``cidr(...).ip()``."""
    if isinstance(v, str):
        return _ip_value(_parse_ip(v))
    if _tag(v) == CIDR_TYPE:
        return _ip_value(_interface(v).ip)
    raise _no_overload()


def _is_ip(raw: str) -> bool:
    try:
        _parse_ip(raw)
    except ValueError:
        return False
    return True


def _ip_is_canonical(raw: str) -> bool:
    return str(_parse_ip(raw)) == raw


def _family(v: Any) -> int:
    return _address(v).version


def _is_global_unicast(v: Any) -> bool:
    """Go's ``netip.Addr.IsGlobalUnicast`` (private addresses included)."""
    a = _address(v)
    if a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local:
        return False
    return a != ipaddress.IPv4Address("255.255.255.255")


def _is_link_local_multicast(v: Any) -> bool:
    a = _address(v)
    if isinstance(a, ipaddress.IPv4Address):
        return a in ipaddress.IPv4Network("224.0.0.0/24")
    return a in ipaddress.IPv6Network("ff02::/16")


_Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _parse_cidr(raw: str) -> _Interface:
    if not isinstance(raw, str):
        raise _no_overload()
    try:
        if "/" not in raw or "%" in raw:
            raise ValueError(f"netip.ParsePrefix(\"{raw}\"): no '/'")
        iface = ipaddress.ip_interface(raw)
    except ValueError as exc:
        raise ValueError(
            f"network address parse error during conversion from string: {exc}"
        ) from None
    if isinstance(iface, ipaddress.IPv6Interface) and iface.ip.ipv4_mapped is not None:
        raise ValueError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return iface


def _cidr_value(iface: _Interface) -> dict[str, Any]:
    return {TYPE_KEY: CIDR_TYPE, "value": f"{iface.ip}/{iface.network.prefixlen}"}


def _interface(v: Any) -> _Interface:
    if _tag(v) == CIDR_TYPE:
        return ipaddress.ip_interface(str(v["value"]))
    raise _no_overload()


def _cidr(raw: str) -> dict[str, Any]:
    return _cidr_value(_parse_cidr(raw))


def _is_cidr(raw: str) -> bool:
    try:
        _parse_cidr(raw)
    except ValueError:
        return False
    return True


def _contains_ip(c: Any, ip: Any) -> bool:
    net = _interface(c).network
    addr = _parse_ip(ip) if isinstance(ip, str) else _address(ip)
    return addr.version == net.version and addr in net


def _contains_cidr(c: Any, other: Any) -> bool:
    net = _interface(c).network
    sub = (_parse_cidr(other) if isinstance(other, str) else _interface(other)).network
    return sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]


def _prefix_length(c: Any) -> int:
    return _interface(c).network.prefixlen


def _masked(c: Any) -> dict[str, Any]:
    net = _interface(c).network
    return _cidr_value(ipaddress.ip_interface(f"{net.network_address}/{net.prefixlen}"))


def _string(v: Any) -> str:
    """``string()`` of the library's values (the CEL core converts everything else)."""
    if _tag(v) in (IP_TYPE, CIDR_TYPE):
        return str(v["value"])
    raise _no_overload()


# -------------------------------------------------------------------------------- quantities

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")


def _parse_quantity(raw: str) -> Decimal:
    if not isinstance(raw, str):
        raise _no_overload()
    m = _QUANTITY.match(raw)
    if m is None:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")  # fmt: skip
    number, suffix = Decimal(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    e = _EXPONENT.match(suffix)
    if e is not None:
        return number.scaleb(int(e.group(1)))
    raise ValueError("unable to parse quantity's suffix")


def _quantity_value(d: Decimal) -> dict[str, Any]:
    text = format(d.normalize(), "f") if d != 0 else "0"
    return {TYPE_KEY: QUANTITY_TYPE, "value": text}


def _amount(v: Any) -> Decimal:
    if _tag(v) == QUANTITY_TYPE:
        return Decimal(str(v["value"]))
    raise _no_overload()


def _quantity(raw: str) -> dict[str, Any]:
    return _quantity_value(_parse_quantity(raw))


def _is_quantity(raw: str) -> bool:
    try:
        _parse_quantity(raw)
    except (ValueError, InvalidOperation):
        return False
    return True


def _sign(v: Any) -> int:
    d = _amount(v)
    return (d > 0) - (d < 0)


def _compare(a: Any, b: Any) -> int:
    x, y = _amount(a), _amount(b)
    return (x > y) - (x < y)


def _is_integer(v: Any) -> bool:
    d = _amount(v)
    return d == d.to_integral_value() and _INT64_MIN <= d <= _INT64_MAX


def _as_integer(v: Any) -> int:
    if not _is_integer(v):
        raise ValueError("cannot convert value to integer")
    return int(_amount(v))


def _operand(v: Any) -> Decimal:
    if isinstance(v, int) and not isinstance(v, bool):
        return Decimal(v)
    return _amount(v)


def _add(a: Any, b: Any) -> dict[str, Any]:
    return _quantity_value(_amount(a) + _operand(b))


def _sub(a: Any, b: Any) -> dict[str, Any]:
    return _quantity_value(_amount(a) - _operand(b))


# -------------------------------------------------------------------------------- the table

FUNCTIONS: dict[str, Callable[..., Any]] = {
    # strings
    "charAt": stdlib.char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": stdlib.lower_ascii,
    "upperAscii": stdlib.upper_ascii,
    "replace": stdlib.replace,
    "split": stdlib.split,
    "substring": stdlib.substring,
    "trim": stdlib.trim,
    "join": stdlib.join,
    "strings.quote": stdlib.quote,
    "format": _string_format,
    "bool": stdlib.bool_,
    # sets
    "sets.contains": stdlib.sets_contains,
    "sets.equivalent": stdlib.sets_equivalent,
    "sets.intersects": stdlib.sets_intersects,
    # lists
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    # regex
    "__matches": _matches,
    "find": _find,
    "findAll": _find_all,
    # URLs
    "url": _url,
    "isURL": _is_url,
    "getScheme": lambda u: _url_part(u, "scheme"),
    "getHost": lambda u: _url_part(u, "host"),
    "getHostname": _hostname,
    "getPort": _port,
    "getEscapedPath": _escaped_path,
    "getQuery": _query,
    # IP and CIDR
    "ip": _ip,
    "isIP": _is_ip,
    "ip.isCanonical": _ip_is_canonical,
    "family": _family,
    "isUnspecified": lambda v: _address(v).is_unspecified,
    "isLoopback": lambda v: _address(v).is_loopback,
    "isLinkLocalMulticast": _is_link_local_multicast,
    "isLinkLocalUnicast": lambda v: _address(v).is_link_local,
    "isGlobalUnicast": _is_global_unicast,
    "cidr": _cidr,
    "isCIDR": _is_cidr,
    "containsIP": _contains_ip,
    "containsCIDR": _contains_cidr,
    "prefixLength": _prefix_length,
    "masked": _masked,
    "string": _string,
    # quantities
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "sign": _sign,
    "isGreaterThan": lambda a, b: _compare(a, b) > 0,
    "isLessThan": lambda a, b: _compare(a, b) < 0,
    "compareTo": _compare,
    "asApproximateFloat": lambda v: float(_amount(v)),
    "asInteger": _as_integer,
    "isInteger": _is_integer,
    "add": _add,
    "sub": _sub,
    # formats
    **FORMAT_FUNCTIONS,
}

_CORE_FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double",
        "string", "bytes", "dyn", "type", "duration", "timestamp", "getFullYear", "getMonth",
        "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes",
        "getSeconds", "getMilliseconds", "of", "none", "hasValue", "value", "orValue", "or",
    }
)  # fmt: skip

KNOWN_FUNCTIONS = frozenset(FUNCTIONS) | _CORE_FUNCTIONS
"""Every function a rule may call (for the compile check; operators are not listed)."""

KNOWN_NAMES = frozenset(
    {
        "self", "oldSelf", "optional", "int", "uint", "double", "bool", "string", "bytes",
        "list", "map", "null_type", "type",
    }
)  # fmt: skip
"""Identifiers a rule may use besides the variables its macros bind."""


def reachable(called: Iterable[str]) -> frozenset[str]:
    """The library functions that calls to ``called`` (names as ``cel.Program.references``
    gives them: ``contains`` for ``sets.contains(…)``) can reach."""
    out: set[str] = set()
    for name in called:
        out |= _BY_CALLED_NAME.get(name, frozenset())
    return frozenset(out)


def _by_called_name() -> dict[str, frozenset[str]]:
    by: dict[str, set[str]] = {}
    for k in FUNCTIONS:
        by.setdefault(k, set()).add(k)
        by.setdefault(k.rpartition(".")[2], set()).add(k)
    return {name: frozenset(ks) for name, ks in by.items()}


_BY_CALLED_NAME = _by_called_name()
"""Library functions by the name a call to them shows (``contains`` for ``sets.contains``)."""


def new_context(functions: frozenset[str] | None = None) -> cel.Context:
    """A CEL context with the library's functions, or only ``functions`` of them (add
    ``self``/``oldSelf`` to it). Each new value of a variable makes the ``cel`` package
    register the context's functions again at the next evaluation (~70 ns each), so a context
    for a few rules is cheaper with only the functions they call."""
    if functions is None:
        return cel.Context(functions=FUNCTIONS)
    return cel.Context(functions={k: FUNCTIONS[k] for k in functions})
