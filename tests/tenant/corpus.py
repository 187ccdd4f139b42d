"""Hostile values a tenant can put into a namespace/Gateway policy, a Gateway or an HTTPRoute.

Each entry says what it attacks. The renderer must treat every one of them as *data*: a child may
hold the value (verbatim), never a different structure, kind, name, namespace or number of
documents because of it. Used by ``test_hostile_values_render.py`` (every template of
``examples/``) and ``test_hostile_values_devcluster.py`` (the controller on the devcluster).

``EXPLOITS`` are the exact attacks of issue 10 ("Value injection (critical)"): a namespace
``GatewayConfig`` setting ``default.replicas`` of ``examples/in-cluster`` so that the settings
ConfigMap template (``replicas: "{{ values.replicas }}"``) turns into a Secret in
``kube-system``; with duplicate keys (last wins), with ``---`` document separators, with single
quotes, and for unquoted positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hostile:
    """One hostile value: ``id`` (test id), ``value`` and what it ``attacks``.

    ``names``: the names of objects the value tries to create (``(namespace, name)``; the
    devcluster test checks that none of them exists).
    """

    id: str
    value: Any
    attacks: str
    names: tuple[tuple[str, str], ...] = ()

    @property
    def is_text(self) -> bool:
        return isinstance(self.value, str)


#: base64 of "owned": what an injected Secret would hold
_OWNED = "b3duZWQ="

EXPLOITS: tuple[Hostile, ...] = (
    Hostile(
        "exploit-dq-dup-keys-secret",
        '3"\nkind: Secret\nmetadata:\n  name: injected\n  namespace: kube-system\n'
        f'data:\n  token: "{_OWNED}',
        'closes a double-quoted scalar; duplicate top-level keys (last wins) turn the ConfigMap '
        "into Secret kube-system/injected (the issue's exploit)",
        (("kube-system", "injected"),),
    ),
    Hostile(
        "exploit-dq-docsep-secret",
        '3"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: injected-doc\n'
        f'  namespace: kube-system\ndata:\n  token: "{_OWNED}',
        "closes a double-quoted scalar and starts a second YAML document: a Secret in kube-system",
        (("kube-system", "injected-doc"),),
    ),
    Hostile(
        "exploit-sq-dup-keys-secret",
        "3'\nkind: Secret\nmetadata:\n  name: injected-sq\n  namespace: kube-system\n"
        f"data:\n  token: '{_OWNED}",
        "the same with single quotes (for templates that quote with '...')",
        (("kube-system", "injected-sq"),),
    ),
    Hostile(
        "exploit-sq-docsep-secret",
        "3'\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: injected-sq-doc\n"
        f"  namespace: kube-system\ndata:\n  token: '{_OWNED}",
        "single quotes and a document separator",
        (("kube-system", "injected-sq-doc"),),
    ),
    Hostile(
        "exploit-plain-dup-keys-secret",
        "3\nkind: Secret\nmetadata:\n  name: injected-plain\n  namespace: kube-system",
        "for an unquoted position ({{ values.x }}): new top-level keys after a newline",
        (("kube-system", "injected-plain"),),
    ),
    Hostile(
        "exploit-dq-namespace-only",
        '3"\nmetadata:\n  name: edge-settings\n  namespace: kube-system\nextra: "',
        "keeps the kind but moves the child into kube-system (duplicate metadata)",
        (("kube-system", "edge-settings"),),
    ),
    Hostile(
        "exploit-flow-mapping-close",
        'x"}, "kind": "Secret", "extra": {"y": "',
        'closes a flow mapping ({name: "{{ x }}"}) and adds keys beside it',
    ),
    Hostile(
        "exploit-docend-then-doc",
        '3"\n...\n---\nkind: Secret\nmetadata: {name: injected-end, namespace: kube-system}\n'
        'x: "',
        "ends the document ('...') and starts another",
        (("kube-system", "injected-end"),),
    ),
)

SYNTAX: tuple[Hostile, ...] = (
    Hostile("double-quote", 'say "hi"', "breaks out of a double-quoted scalar"),
    Hostile("single-quote", "it's", "breaks out of a single-quoted scalar"),
    Hostile("quotes-mixed", "'\"'\"'", "alternating quotes"),
    Hostile("backslash-escapes", 'a\\"b\\nc\\u0022', "escape sequences read by double quotes"),
    Hostile("newline", "line one\nline two", "a line break inside a scalar"),
    Hostile("crlf-key", "a\r\nkind: Secret", "CR LF then a new key"),
    Hostile("trailing-newline", "value\n", "a trailing line break (chomping)"),
    Hostile("leading-trailing-spaces", "  padded  ", "spaces that plain scalars drop"),
    Hostile("tab", "a\tb", "a tab (indentation in YAML)"),
    Hostile("doc-start", "---", "a document start marker"),
    Hostile("doc-end", "...", "a document end marker"),
    Hostile("doc-end-line", "a\n...\nkind: Secret", "a document end on its own line"),
    Hostile("flow-mapping", "{kind: Secret, namespace: kube-system}", "a flow mapping"),
    Hostile("flow-sequence", "[a, {kind: Secret}]", "a flow sequence"),
    Hostile("anchor", "&a value", "an anchor"),
    Hostile("alias", "*a", "an alias"),
    Hostile("anchors-and-aliases", "x\nk: &a [1, 2]\nl: [*a, *a]", "anchors/aliases on new keys"),
    Hostile("tag-python-object",
            '!!python/object/apply:os.system ["touch /tmp/bifrost-pwned"]',
            "a Python object tag (code execution in an unsafe loader)"),
    Hostile("tag-binary", "!!binary b3duZWQ=", "a binary tag"),
    Hostile("tag-local", "!Secret x", "a local tag"),
    Hostile("tag-str-int", "!!int 12", "a core tag re-typing the value"),
    Hostile("merge-key", "<<: {kind: Secret}", "a merge key"),
    Hostile("merge-key-line", "x\n<<: {kind: Secret, metadata: {namespace: kube-system}}",
            "a merge key on a new line"),
    Hostile("colon-space", "key: value", "a mapping in a plain scalar"),
    Hostile("comment", "value # comment", "a comment that cuts the value"),
    Hostile("hash-start", "#not-a-comment", "a comment at the start"),
    Hostile("block-literal", "|\n  kind: Secret", "a block scalar indicator"),
    Hostile("block-folded", ">-\n  kind: Secret", "a folded block scalar"),
    Hostile("sequence-entry", "- a\n- kind: Secret", "block sequence entries"),
    Hostile("complex-key", "? kind\n: Secret", "an explicit key"),
    Hostile("directive", "%YAML 1.1\n---\nkind: Secret", "a YAML directive"),
    Hostile("reserved-indicators", "@at `tick", "reserved indicators"),
    Hostile("slot-token-forgery", "bfz0123456789abcdefn0z {{…}}",
            "looks like the renderer's slot token (bfz<nonce>n<N>z) and its mask: stays text"),
    Hostile("jinja-expression", "{{ 7 * 7 }}", "template syntax in a value (must not run)"),
    Hostile("jinja-statement", "{% for i in range(3) %}x{% endfor %}{# c #}",
            "template statements and comments in a value"),
)

LINE_BREAKS: tuple[Hostile, ...] = (
    Hostile("u2028-line-separator", "a\u2028kind: Secret", "U+2028 LINE SEPARATOR (a YAML break)"),
    Hostile("u2029-para-separator", "a\u2029kind: Secret", "U+2029 PARAGRAPH SEPARATOR"),
    Hostile("u0085-nel", "a\u0085kind: Secret", "U+0085 NEXT LINE (NEL)"),
    Hostile("nul", "a\x00b", "NUL"),
    Hostile("control-chars", "\x1b[31mred\x07\x08", "ESC, BEL and BS control characters"),
    Hostile("bom", "\ufeffvalue", "a byte order mark"),
    Hostile("non-bmp", "\U0001f600 \u00e9\u4e2d", "emoji and non-ASCII"),
)

LONG: tuple[Hostile, ...] = (
    Hostile("very-long", "A" * 65_536, "a 64 KiB string"),
    Hostile("very-long-lines", ('x"\n' + "k: v\n") * 4_096, "many lines of injected keys"),
)

RETYPED: tuple[Hostile, ...] = (
    Hostile("hex", "0x10", "YAML 1.1 hexadecimal: would become 16"),
    Hostile("octal", "0o17", "octal: would become 15"),
    Hostile("octal-legacy", "017", "YAML 1.1 legacy octal"),
    Hostile("yes", "yes", "YAML 1.1 boolean"),
    Hostile("off", "off", "YAML 1.1 boolean"),
    Hostile("true", "True", "boolean"),
    Hostile("exponent", "1e3", "a float in exponent form"),
    Hostile("exponent-signed", "1.0e+3", "a float"),
    Hostile("infinity", ".inf", "a float infinity"),
    Hostile("nan", ".NaN", "a float NaN"),
    Hostile("null-tilde", "~", "null"),
    Hostile("null-word", "null", "null"),
    Hostile("timestamp", "2001-12-14", "a date (not a JSON type)"),
    Hostile("sexagesimal", "1:30", "YAML 1.1 base 60: would become 90"),
    Hostile("underscored-int", "1_000", "YAML 1.1 int with underscores"),
    Hostile("plus-int", "+12", "a signed int"),
)

STRUCTURED: tuple[Hostile, ...] = (
    Hostile("map-kind-secret", {"kind": "Secret", "metadata": {"namespace": "kube-system"}},
            "a mapping where a scalar is expected"),
    Hostile("list-of-maps", [{"kind": "Secret"}, "---"], "a list where a scalar is expected"),
)

CORPUS: tuple[Hostile, ...] = (*EXPLOITS, *SYNTAX, *LINE_BREAKS, *LONG, *RETYPED, *STRUCTURED)
"""Every hostile value; ids are unique."""

TEXT_CORPUS: tuple[Hostile, ...] = tuple(h for h in CORPUS if h.is_text)
"""The string values (names, hostnames and route fields can only be strings)."""

assert len({h.id for h in CORPUS}) == len(CORPUS), "corpus ids must be unique"
assert len(CORPUS) >= 30


def by_id(hostile_id: str) -> Hostile:
    return next(h for h in CORPUS if h.id == hostile_id)
