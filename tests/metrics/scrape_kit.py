"""Scraping ``/metrics`` over HTTP and reading the exposition with prometheus_client's parser
(the same text format rules promtool checks), and the metric names a PromQL expression uses."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "components" / "prometheus-rule" / "prometheusrule.yaml"

Labels = tuple[tuple[str, str], ...]


@dataclass
class Scrape:
    """One parsed exposition: every sample by (name, sorted labels), every family's type."""

    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def value(self, metric: str, /, **labels: str) -> float:
        """The sample's value, 0 when it is not there (a counter not yet incremented)."""
        return self.samples.get((metric, tuple(sorted(labels.items()))), 0.0)

    def total(self, metric: str, /, **labels: str) -> float:
        """Sum over the samples of ``metric`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == metric and want <= set(ls))

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls) in self.samples if n == name and label in dict(ls)}

    def names(self) -> set[str]:
        """Every name a query can use: sample names and family names (a counter family with
        no sample yet is known by its TYPE line, as ``<family>_total``)."""
        out = {n for n, _ in self.samples}
        for family, kind in self.types.items():
            out.add(family)
            if kind == "counter":
                out.add(f"{family}_total")
        return out


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    out = Scrape()
    for family in text_string_to_metric_families(text):
        out.types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out.samples, f"duplicate series {key}"
            out.samples[key] = s.value
    return out


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "unless", "and",
             "or", "bool", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions (followed by
    ``(``), keywords, label names (inside ``{}`` or a ``by``/``on`` list), durations or
    strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS:
            continue
        before = text[match.start() - 1] if match.start() > 0 else " "
        if before.isdigit() or before == ".":
            continue  # a number's suffix (1e3) or unit
        names.add(name)
    return names


def alert_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]
