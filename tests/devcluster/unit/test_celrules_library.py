"""The CEL function library and value shapes the devcluster gives CRD validation rules, and the
rules it ships: every ``x-kubernetes-validations`` rule and ``messageExpression`` of the bundled
Gateway API and cert-manager CRDs compiles against that library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from devcluster import validation_rules as celrules
from devcluster.validation_rules import library as cel_library
from devcluster.validation_rules.values import Shapes, escape, to_cel

CRDS = Path(__file__).resolve().parents[3] / "devcluster" / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _rules(node: Any, out: list[tuple[str, str]], where: str) -> None:
    if isinstance(node, dict):
        for r in node.get("x-kubernetes-validations") or ():
            out.append((where, r["rule"]))
            if r.get("messageExpression"):
                out.append((where, r["messageExpression"]))
        for v in node.values():
            _rules(v, out, where)
    elif isinstance(node, list):
        for v in node:
            _rules(v, out, where)


def shipped_rules() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in sorted(CRDS.glob("*/*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if doc:
                _rules(doc.get("spec"), out, path.name)
    return out


def test_every_shipped_rule_compiles_against_the_library() -> None:
    rules = shipped_rules()
    assert len(rules) > 200  # Gateway API v1.6.1 (both versions) and cert-manager: 247
    broken = [(where, text) for where, text in rules if celrules.compile_error(text) is not None]
    assert broken == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("self.x +", "compilation failed: ERROR: <input>:1:"),
        ("nosuch(self)", "undeclared reference to 'nosuch'"),
        ("self.all(x, y > 0)", "undeclared reference to 'y'"),
    ],
)
def test_rules_that_do_not_compile_say_why(text: str, error: str) -> None:
    found = celrules.compile_error(text)
    assert found is not None and error in found


def evaluate(text: str, **variables: Any) -> Any:
    ctx = cel_library.new_context()
    for name, value in variables.items():
        ctx.add_variable(name, value)
    return cel.compile(text).execute(ctx)


@pytest.mark.parametrize(
    "text",
    [
        # strings
        "'a/b'.split('/') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'",
        "'Ab'.lowerAscii() == 'ab' && 'Ab'.upperAscii() == 'AB' && ' a '.trim() == 'a'",
        "'abc'.indexOf('c') == 2 && 'abcc'.lastIndexOf('c') == 3 && 'abc'.substring(1, 2) == 'b'",
        "'aaa'.replace('a', 'b', 2) == 'bba' && 'abc'.charAt(1) == 'b'",
        "'%s=%d'.format(['x', 3]) == 'x=3'",
        # lists and sets
        "[1, 2, 3].isSorted() && ![2, 1].isSorted() && [1, 2].sum() == 3",
        "[3, 1].min() == 1 && [3, 1].max() == 3 && [1, 2, 1].indexOf(1) == 0",
        "[1, 2, 1].lastIndexOf(1) == 2 && sets.contains([1, 2], [2]) && sets.intersects([1], [1])",
        # regex
        "'abc123'.find('[0-9]+') == '123' && 'a1b2'.findAll('[0-9]') == ['1', '2']",
        # URLs
        "isURL('https://e.com:8443/p?q=1') && url('https://e.com:8443/p').getPort() == '8443'",
        "url('https://e.com/p').getHostname() == 'e.com'",
        "url('https://e.com/p').getScheme() == 'https'",
        "url('https://e.com/p?a=1&a=2').getQuery() == {'a': ['1', '2']} && !isURL('e.com')",
        # IP and CIDR
        "isIP('10.0.0.1') && !isIP('10.0.0') && ip('10.0.0.1').family() == 4",
        "ip('::1').isLoopback() && ip('fe80::1').isLinkLocalUnicast()",
        "ip('10.1.1.1').isGlobalUnicast()",
        "ip('2001:DB8::1') == ip('2001:db8::1') && string(ip('2001:DB8::1')) == '2001:db8::1'",
        "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')",
        "!isIP('::ffff:1.2.3.4')",
        "cidr('10.0.0.0/8').containsIP('10.2.3.4')",
        "!cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
        "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')",
        "cidr('10.0.0.1/8').masked() == cidr('10.0.0.0/8')",
        "cidr('10.0.0.1/8').ip() == ip('10.0.0.1') && cidr('10.0.0.0/8').prefixLength() == 8",
        "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0') && string(cidr('10.0.0.1/8')) == '10.0.0.1/8'",
        # quantities
        "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('1000m') == quantity('1')",
        "quantity('5').add(3).asInteger() == 8",
        "quantity('1k').sub(quantity('1')).asInteger() == 999",
        "!quantity('500m').isInteger() && quantity('-2').sign() == -1 && isQuantity('1Gi')",
        "!isQuantity('1GB')",
        "quantity('1.5').asApproximateFloat() == 1.5",
        "quantity('1').compareTo(quantity('2')) == -1",
        # formats
        "!format.dns1123Label().validate('good-name').hasValue()",
        "format.dns1123Label().validate('Bad').value()[0].startsWith('a lowercase RFC 1123 label')",
        "format.named('dns1123Subdomain').hasValue() && !format.named('nope').hasValue()",
        "!format.qualifiedName().validate('example.com/Name').hasValue()",
        "format.labelValue().validate('-bad').hasValue()",
        "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
    ],
)
def test_library_functions(text: str) -> None:
    assert evaluate(text) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[].min()", "min called on empty list"),
        ("ip('::ffff:1.2.3.4')", 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'),
        ("ip('10.0.0.1%eth0')", "with zone value is not allowed"),
        ("url('e.com')", "URL parse error during conversion from string"),
        ("quantity('abc')", "quantities must match the regular expression"),
        ("quantity('1.2.3')", "unable to parse quantity's suffix"),
        ("quantity('0.5').asInteger()", "cannot convert value to integer"),
        ("'x'.find('(')", "Illegal regex"),
    ],
)
def test_library_errors_carry_the_upstream_message(text: str, message: str) -> None:
    with pytest.raises(Exception, match=r".") as info:
        evaluate(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("name", "name"),
        ("namespace", "__namespace__"),
        ("in", "__in__"),
        ("a-b", "a__dash__b"),
        ("a.b", "a__dot__b"),
        ("a/b", "a__slash__b"),
        ("a__b", "a__underscores__b"),
        ("1a", None),
        ("a b", None),
        ("", None),
    ],
)
def test_property_names_are_escaped_as_upstream(name: str, escaped: str | None) -> None:
    assert escape(name) == escaped


def test_values_are_shaped_by_the_schema_and_plain_ones_are_not_copied() -> None:
    shapes = Shapes()
    plain = {"type": "object", "properties": {"a": {"type": "string"}}}
    value = {"a": "x"}
    assert to_cel(value, shapes.of(plain)) is value
    s = {
        "type": "object",
        "properties": {
            "namespace": {"type": "string"},
            "n": {"type": "number"},
            "b": {"type": "string", "format": "byte"},
            "when": {"type": "string", "format": "date-time"},
            "1bad": {"type": "string"},
            "m": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }
    view = to_cel(
        {"namespace": "ns", "n": 2, "b": "aGk=", "when": "2024-01-02T03:04:05Z", "1bad": "x",
         "m": {"k-1": 3}},
        shapes.of(s),
    )  # fmt: skip
    assert view["__namespace__"] == "ns"
    assert view["n"] == 2.0 and isinstance(view["n"], float)
    assert view["b"] == b"hi"
    assert view["when"].year == 2024 and view["when"].utcoffset() is not None
    assert "1bad" not in view
    assert view["m"] == {"k-1": 3.0}


def test_the_resource_root_shows_only_name_and_generate_name_of_metadata() -> None:
    shapes = Shapes()
    root = {"type": "object", "properties": {"spec": {"type": "object"}}}
    view = to_cel(
        {"apiVersion": "v", "kind": "K", "metadata": {"name": "n", "labels": {"a": "b"}},
         "spec": {}},
        shapes.of(root, resource_root=True),
    )  # fmt: skip
    assert view == {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {}}
