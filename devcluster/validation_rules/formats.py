"""The Kubernetes CEL ``format`` library (``k8s.io/apiserver/pkg/cel/library/format.go``).

``format.dns1123Label().validate(self)`` is ``optional.none()`` for a valid string, else an
optional list of the messages the API server's own name validation gives
(``apimachinery/pkg/util/validation``), so a rule's ``messageExpression`` can show them.
``format.named("dns1123Label")`` is the same format as an optional (none for an unknown name).

A format value travels through CEL as a tagged map (``{"__celtype__": "kubernetes.NamedFormat",
"name": ...}``): the ``cel`` package carries only plain values.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import uuid
from collections.abc import Callable
from typing import Any

import cel

__all__ = ["FUNCTIONS"]

TYPE_KEY = "__celtype__"
FORMAT_TYPE = "kubernetes.NamedFormat"

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + pattern + "$")


_RX_LABEL = _full(_DNS1123_LABEL)
_RX_SUBDOMAIN = _full(_DNS1123_SUBDOMAIN)
_RX_DNS1035 = _full(_DNS1035_LABEL)
_RX_QUALIFIED = _full(_QUALIFIED_NAME)
_RX_LABEL_VALUE = _full(_LABEL_VALUE)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}'," for e in examples)
    return f"{msg} (e.g. {shown} regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def _dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _RX_LABEL.match(value):
        if _RX_SUBDOMAIN.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_LABEL_MSG, _DNS1123_LABEL, "my-name", "123-abc"))
    return errs


def _dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _RX_SUBDOMAIN.match(value):
        errs.append(_regex_error(_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com"))
    return errs


def _dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _RX_DNS1035.match(value):
        errs.append(_regex_error(_DNS1035_MSG, _DNS1035_LABEL, "my-name", "abc-123"))
    return errs


def _qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _RX_QUALIFIED.match(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
        )
    return errs


def _label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _RX_LABEL_VALUE.match(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errs


def _uri(value: str) -> list[str]:
    # Go's url.ParseRequestURI: an absolute URI, or an absolute path.
    if value.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", value):
        return []
    return [f'parse "{value}": invalid URI for request']


def _uuid(value: str) -> list[str]:
    try:
        uuid.UUID(value)
    except ValueError:
        return ["does not match the UUID format"]
    return []


def _byte(value: str) -> list[str]:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ["invalid base64"]
    return []


def _date(value: str) -> list[str]:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return ["invalid date"]
    return []


def _datetime(value: str) -> list[str]:
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return ["invalid datetime"]
    return []


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _dns1123_label,
    "dns1123Subdomain": _dns1123_subdomain,
    "dns1035Label": _dns1035_label,
    "qualifiedName": _qualified_name,
    "dns1123LabelPrefix": lambda s: _dns1123_label(_mask_trailing_dash(s)),
    "dns1123SubdomainPrefix": lambda s: _dns1123_subdomain(_mask_trailing_dash(s)),
    "dns1035LabelPrefix": lambda s: _dns1035_label(_mask_trailing_dash(s)),
    "labelValue": _label_value,
    "uri": _uri,
    "uuid": _uuid,
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def _format(name: str) -> dict[str, str]:
    return {TYPE_KEY: FORMAT_TYPE, "name": name}


def _named(name: str) -> cel.OptionalValue:
    if name in _FORMATS:
        return cel.OptionalValue.of(_format(name))
    return cel.OptionalValue.none()


def _validate(fmt: Any, value: str) -> cel.OptionalValue:
    if not (isinstance(fmt, dict) and fmt.get(TYPE_KEY) == FORMAT_TYPE):
        raise TypeError("no such overload")
    errs = _FORMATS[str(fmt["name"])](value)
    return cel.OptionalValue.of(errs) if errs else cel.OptionalValue.none()


def _constant(name: str) -> Callable[[], dict[str, str]]:
    return lambda: _format(name)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "format.named": _named,
    "validate": _validate,
    **{f"format.{name}": _constant(name) for name in _FORMATS},
}
