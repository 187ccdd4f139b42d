"""Rendered template text → one object, with every printed value inserted as data.

This is what makes value injection impossible by construction. While a template renders, each
``{{ expression }}`` prints a *slot token* (a random, per-render word of letters and digits)
instead of the value, and the value is kept aside in a ``SlotTable``. So the text that YAML
parses holds only what the blueprint's author wrote, plus opaque words. After parsing, every slot
token found in a scalar is replaced by its value:

- a plain scalar that is exactly one token (``replicas: {{ values.replicas }}``) becomes the value
  itself, typed: an int stays an int, the string ``"0x10"`` stays that string, a list printed with
  ``| to_json`` or ``| to_yaml`` becomes that list;
- a quoted scalar that is exactly one token (``"{{ x }}"``) becomes the value's text;
- a token inside a longer scalar (``"{{ gateway.metadata.name }}-settings"``) is replaced by the
  value's text; in a block scalar (``|``/``>``) the continuation lines of a value lose up to the
  block's indentation (what YAML would have stripped from an ``| indent(n)`` value).

A value therefore cannot add a key, a document, a tag or an anchor, cannot change the kind, name
or namespace the author wrote, and lands in the child verbatim. The loader is strict about the
author's text too: duplicate keys (YAML would let the last one win), anchors and aliases, explicit
tags and merge keys (``<<``) are refused.

Errors quote positions (line and column of the rendered output) and the author's line with slot
tokens shown as ``{{…}}`` — never a value, which may be tenant input or Secret-derived.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MERGE_TAG = "tag:yaml.org,2002:merge"


NO_DATA: Any = object()


class Structured(str):
    """Printed text that remembers where it came from.

    - ``data``: what ``to_json``/``to_yaml`` serialised (a slot that is a whole plain scalar
      becomes this data; anywhere else the text is used);
    - ``original``: for ``indent`` output, the text before indenting. Indentation only served
      YAML's layout, so outside block scalars the original text is inserted; inside a block
      scalar the indented text is inserted less the block's indentation (what YAML stripped).
    """

    data: Any
    original: str | None

    def __new__(cls, text: str, data: Any = NO_DATA, original: str | None = None) -> Structured:
        self = super().__new__(cls, text)
        self.data = data
        self.original = original
        return self


@dataclass
class SlotTable:
    """The values printed during one render, keyed by slot number."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    values: list[Any] = field(default_factory=list)
    size: int = 0

    def __post_init__(self) -> None:
        self.pattern = re.compile(f"bfz{self.nonce}n([0-9]+)z")

    def add(self, value: Any) -> str:
        self.values.append(value)
        self.size += len(value) if isinstance(value, str) else 24
        return f"bfz{self.nonce}n{len(self.values) - 1}z"

    def mask(self, text: str) -> str:
        """``text`` with every token shown as ``{{…}}`` (for messages)."""
        return self.pattern.sub("{{…}}", text)


class OutputError(Exception):
    """The rendered text is not one well-formed object; ``line`` is 1-based in the output."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_documents(text: str, slots: SlotTable) -> list[Any]:
    """Parse ``text`` strictly and substitute the slots; the non-empty documents."""
    try:
        _refuse_anchors_and_tags(text, slots)
        nodes = list(yaml.compose_all(text, Loader=_SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        message = f"rendered output is not valid YAML ({problem})"
        raise _error_at(text, slots, mark, message) from None
    builder = _Builder(text, slots)
    return [doc for doc in (builder.build(node) for node in nodes if node is not None)
            if doc is not None]


def _refuse_anchors_and_tags(text: str, slots: SlotTable) -> None:
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _error_at(text, slots, event.start_mark,
                            "YAML aliases (*name) are not allowed in rendered output")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _error_at(text, slots, event.start_mark,
                            "YAML anchors (&name) are not allowed in rendered output")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and isinstance(
            event, yaml.ScalarEvent | yaml.MappingStartEvent | yaml.SequenceStartEvent
        ):
            raise _error_at(text, slots, event.start_mark,
                            "explicit YAML tags (!!type, !name) are not allowed in rendered output")


def _error_at(text: str, slots: SlotTable, mark: Any, message: str) -> OutputError:
    """``message`` with the position, and the author's line with values masked."""
    if mark is None:
        return OutputError(message)
    line, column = mark.line + 1, mark.column + 1
    lines = text.splitlines()
    snippet = ""
    if 0 < line <= len(lines):
        snippet = f": {slots.mask(lines[line - 1]).strip()!r}"
    return OutputError(
        f"{message} at line {line}, column {column} of the rendered output{snippet}", line
    )


class _Builder:
    def __init__(self, text: str, slots: SlotTable) -> None:
        self.text = text
        self.slots = slots
        self.constructor = SafeConstructor()

    def build(self, node: Node) -> Any:
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    raise self._error(key_node, "YAML merge keys (<<) are not allowed")
                key = self.build(key_node)
                if isinstance(key, list | dict):
                    raise self._error(key_node, "a mapping key must be a scalar")
                if key in out:
                    raise self._error(
                        key_node,
                        f"duplicate key {self._describe_key(key_node)} (YAML would keep only the "
                        "last one; write each key once)",
                    )
                out[key] = self.build(value_node)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item) for item in node.value]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _describe_key(self, node: Node) -> str:
        if isinstance(node, ScalarNode):
            return repr(self.slots.mask(node.value)) if self.slots.pattern.search(node.value) \
                else repr(node.value)
        return "(a collection)"

    def _scalar(self, node: ScalarNode) -> Any:
        value = node.value
        matches = list(self.slots.pattern.finditer(value))
        if not matches:
            return self.constructor.construct_object(node, deep=True)
        block = node.style in ("|", ">")
        if len(matches) == 1 and matches[0].group(0) == value and not block:
            slot = self.slots.values[int(matches[0].group(1))]
            if not node.style:  # plain (None, or '' from libyaml): the value itself
                if not isinstance(slot, Structured):
                    return slot
                if slot.data is not NO_DATA:
                    return slot.data
            return _text(slot)
        indent = self._block_indent(node) if block else 0
        return self.slots.pattern.sub(
            lambda m: _text(self.slots.values[int(m.group(1))], block_indent=indent, block=block),
            value,
        )

    def _block_indent(self, node: ScalarNode) -> int:
        """The indentation of a block scalar's content lines in the rendered text."""
        start = node.start_mark.index
        newline = self.text.find("\n", start)
        if newline < 0:
            return 0
        for line in self.text[newline + 1:].split("\n"):
            if line.strip():
                return len(line) - len(line.lstrip(" "))
        return 0

    def _error(self, node: Node, problem: str) -> OutputError:
        return _error_at(self.text, self.slots, node.start_mark, problem)


def _text(value: Any, *, block_indent: int = 0, block: bool = False) -> str:
    """A slot's text (as Jinja prints it: True, 3, 1.5; to_json gives JSON spellings)."""
    if isinstance(value, Structured) and value.original is not None:
        return _dedent(str(value), block_indent) if block else value.original
    return str(value)


def _dedent(text: str, indent: int) -> str:
    if not indent or "\n" not in text:
        return text
    head, *rest = text.split("\n")
    out = [head]
    for line in rest:
        spaces = len(line) - len(line.lstrip(" "))
        out.append(line[min(spaces, indent):])
    return "\n".join(out)
