"""Every string-growing path and the render time are bounded in the template sandbox."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from bifrost.render import RenderError
from bifrost.render.budgets import (
    BudgetExceeded,
    Budgets,
    cel_comprehension_depth,
    check_cel,
    check_gateway_output,
)
from bifrost.render.model import RenderChild
from bifrost.render.templates import render_child

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n"
N = 400_000_000


def render(body: str, limits: Budgets | None = None, **values: Any) -> dict[str, Any] | None:
    child = RenderChild(id="big", template=HEAD + body)
    if limits is None:
        return render_child(child, {"values": values})
    return render_child(child, {"values": values}, limits=limits)


BYPASSES = {
    "ljust": f"  x: {{{{ 'x'.ljust({N}) }}}}\n",
    "rjust": f"  x: {{{{ 'x'.rjust({N}) }}}}\n",
    "center": f"  x: {{{{ 'x'.center({N}) }}}}\n",
    "zfill": f"  x: {{{{ '1'.zfill({N}) }}}}\n",
    "format-width": f"  x: {{{{ '{{:>{N}}}'.format(1) }}}}\n",
    "format-nested-width": f"  x: {{{{ '{{:{{}}}}'.format(1, {N}) }}}}\n",
    "percent-width": f"  x: {{{{ '%0{N}d' % 1 }}}}\n",
    "percent-star": f"  x: {{{{ '%*d' % ({N}, 1) }}}}\n",
    "tilde-doubling": "  x: {% set a = 'x' * 1000000 %}{% set b = a ~ a %}{{ b ~ b }}\n",
    "plus-doubling": "  x: {% set a = 'x' * 1000000 %}{{ a + a }}\n",
    "replace": "  x: {{ ('x' * 100000).replace('x', 'y' * 1000) }}\n",
    "replace-filter": "  x: {{ ('x' * 100000) | replace('x', 'y' * 1000) }}\n",
    "replace-empty": "  x: {{ ('x' * 100000).replace('', 'y' * 100) }}\n",
    "join": "  x: {{ ('x' * 1000000).join(['a'] * 1000) }}\n",
    "join-filter": "  x: {{ (['x' * 1000000] * 1000) | join('') }}\n",
    "indent-filter": "  x: {{ ('a\\n' * 100000) | indent(1000) }}\n",
    "expandtabs": "  x: {{ ('\\t' * 100000).expandtabs(1000) }}\n",
    "repeat": "  x: {{ 'x' * 100000000 }}\n",
    "range": "  x: {% for i in range(100000000) %}{% endfor %}\n",
    "output-loop": "  x: \"{% for i in range(1000000) %}xxxxxxxxxx{% endfor %}\"\n",
}


@pytest.mark.parametrize("body", BYPASSES.values(), ids=BYPASSES.keys())
def test_each_string_growing_path_is_refused_before_it_allocates(body: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RenderError) as info:
            render(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = info.value.message
    assert "over budget" in message or "refused by the template sandbox" in message, message
    assert info.value.child_id == "big"
    assert peak < 64 * 1024 * 1024, f"peak {peak} bytes"


def test_nested_loops_hit_the_render_time_limit() -> None:
    body = ("  x: \"{% for i in values.l %}{% for j in values.l %}{% for k in values.l %}"
            "{% endfor %}{% endfor %}{% endfor %}\"\n")
    with pytest.raises(RenderError) as info:
        render(body, Budgets(render_seconds=0.2), l=list(range(1000)))
    assert "rendering took longer than 0.2 s" in info.value.message


def test_output_per_child_is_capped() -> None:
    body = "  x: \"{% for i in range(2000) %}{{ values.s }}{% endfor %}\"\n"
    with pytest.raises(RenderError) as info:
        render(body, Budgets(max_child_bytes=100_000), s="y" * 100)
    assert "over 100000 bytes" in info.value.message


def test_ordinary_templates_fit_comfortably() -> None:
    obj = render("  x: \"{{ values.s.ljust(20) }}{{ '%05d' % 7 }}{{ '{:>8}'.format('a') }}\"\n",
                 s="edge")
    assert obj is not None
    assert obj["data"]["x"] == "edge                00007       a"


@pytest.mark.parametrize(
    ("expression", "depth"),
    [
        ("object.status.ready", 0),
        ('object.status.conditions.exists(c, c.type == "Ready")', 1),
        ("a.all(x, b.exists(y, x == y))", 2),
        ("a.map(x, a.map(y, a.map(z, x + y + z)))", 3),
        ('a.exists(x, x == ".all(") ', 1),
        ("a.filter(x, (x > 1)).map(y, y)", 1),
    ],
)
def test_cel_comprehension_depth(expression: str, depth: int) -> None:
    assert cel_comprehension_depth(expression) == depth


def test_cel_static_cost_limit() -> None:
    check_cel("a.all(x, b.exists(y, x == y))")
    with pytest.raises(BudgetExceeded, match="nest 3 deep; the limit is 2"):
        check_cel("a.map(x, a.map(y, a.map(z, x + y + z)))")
    with pytest.raises(BudgetExceeded, match="characters long"):
        check_cel("1 + " * 2000 + "1")


def test_bounded_filters_still_take_generators() -> None:
    obj = render("  x: \"{{ values.l | map('upper') | join(',') }}\"\n"
                 "  y: \"{{ ','.join(values.l | map('lower')) }}\"\n", l=["a", "B"])
    assert obj is not None and obj["data"] == {"x": "A,B", "y": "a,b"}


def test_children_per_gateway_are_capped_in_number_and_size() -> None:
    small = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    limits = Budgets(max_children=3, max_gateway_bytes=10_000)
    assert check_gateway_output([small] * 3, limits) is None
    over = check_gateway_output([small] * 4, limits)
    assert over is not None and "4 children" in over and "limit is 3" in over
    big = {**small, "data": {"k": "y" * 6_000}}
    over = check_gateway_output([big, big], limits)
    assert over is not None and "over 10000 bytes in total" in over
