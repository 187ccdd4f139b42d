"""Every relative link in the documentation leads somewhere.

The docs link to each other, to examples and to code (``[recovery.md](recovery.md)``,
``[the blueprint](../examples/in-cluster/10-blueprint.yaml)``). A file moved or renamed breaks
such a link silently; this test resolves every relative Markdown link of ``README.md``,
``CHANGELOG.md``, ``docs/*.md`` and ``examples/*/README.md`` against the linking file's folder
and requires the target to exist — and, for a ``file.md#anchor`` or ``#anchor`` link, a heading
with that anchor (GitHub's rule: lower case, punctuation dropped, spaces to hyphens, ``-1``,
``-2``… for repeats). Links in code blocks and inline code are not links; ``http(s):`` and
``mailto:`` links are not checked (no network here).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _documents() -> list[Path]:
    docs = [REPO / "README.md", REPO / "CHANGELOG.md"]
    docs += sorted((REPO / "docs").glob("*.md"))
    docs += sorted((REPO / "examples").glob("*/README.md"))
    return [d for d in docs if d.exists()]


def _prose(text: str) -> str:
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return [
        target for target in _LINK.findall(_prose(path.read_text()))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]


def test_the_slug_rule() -> None:
    assert slug("Certificates: cert-manager renews only after bifrost rotates") == (
        "certificates-cert-manager-renews-only-after-bifrost-rotates")
    assert slug("`spec.addresses`: where a Gateway's addresses come from") == (
        "specaddresses-where-a-gateways-addresses-come-from")


def test_the_checker_finds_links_and_skips_code(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("a [b](c.md) `[d](e.md)` [f](https://g)\n```\n[h](i.md)\n```\n[j](#k)\n")
    assert links(doc) == ["c.md", "#k"]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken: list[str] = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{doc.relative_to(REPO)}: broken links: {broken}"
