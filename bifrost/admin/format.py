"""Formatters: view models → text (aligned tables), JSON or YAML.

Tables are drawn as plain aligned columns (the ``kubectl get`` style) rather than with rich's
``Table``: the output is greppable and diff-able, stable under any terminal width, and fast
enough for a fleet (rich needs ~5 s to lay out 10,000 rows; this takes milliseconds). Rich is
used for what it is good at: refreshing in place (``--watch``).

JSON and YAML are the view models dumped as they are (see ``bifrost.admin.views``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml

from bifrost.admin.views import (
    ActionResult,
    ConditionView,
    Document,
    GatewayDetail,
    GatewayList,
    GatewayRow,
    Graph,
    History,
    JournalEntry,
    LiveGateway,
    OperationSummary,
    Schedule,
)

NONE = "-"
ERROR_WIDTH = 80
MESSAGE_WIDTH = 100


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


# --- documents -----------------------------------------------------------------------------------
def to_json(doc: Document, *, compact: bool = False) -> str:
    if compact:
        return doc.model_dump_json()
    return doc.model_dump_json(indent=2)


def to_yaml(doc: Document) -> str:
    data = json.loads(doc.model_dump_json())
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


# --- cells ---------------------------------------------------------------------------------------
def one_line(text: str | None, width: int | None = None) -> str:
    if not text:
        return NONE
    flat = " ".join(text.split())
    if width is not None and len(flat) > width:
        return flat[: width - 1] + "…"
    return flat


def duration(seconds: float | None) -> str:
    """A compact duration: 850ms, 42s, 3m12s, 5h03m, 41d6h."""
    if seconds is None:
        return NONE
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s < 1:
        return f"{sign}{int(s * 1000)}ms"
    whole = int(s)
    if whole < 60:
        return f"{sign}{s:.1f}s" if s < 10 else f"{sign}{whole}s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{sign}{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d{hours}h"


def timestamp(when: datetime | None) -> str:
    """``2026-04-12 10:00:00Z`` (UTC; the store's times always are)."""
    if when is None:
        return NONE
    if when.utcoffset():
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None, microsecond=0).isoformat(sep=" ") + "Z"


def relative(when: datetime | None, now: datetime) -> str:
    """``2026-04-12 10:00:00Z (in 41d6h)`` / ``(3m12s ago)``."""
    if when is None:
        return NONE
    delta = (when - now).total_seconds()
    rel = f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"
    return f"{timestamp(when)} ({rel})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> str:
    """Aligned columns separated by two spaces; the last column is not padded."""
    if not rows:
        return ""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    last = len(headers) - 1

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(widths[i]) if i < last else c for i, c in enumerate(cells)]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


# --- gateways ------------------------------------------------------------------------------------
def operation_cell(ops: Sequence[OperationSummary]) -> str:
    if not ops:
        return NONE
    op = ops[0]
    cell = f"#{op.id} {op.machine} {op.state} ({op.status})"
    if len(ops) > 1:
        cell += f" +{len(ops) - 1}"
    return cell


def step_cell(op: OperationSummary) -> str:
    if op.step is None:
        return NONE
    return f"{op.step} #{op.attempt}" if op.attempt > 1 else op.step


def gateway_cells(row: GatewayRow, now: datetime) -> list[str]:
    op = row.operations[0] if row.operations else None
    return [
        f"{row.namespace}/{row.name}",
        row.gateway_class or NONE,
        row.lifecycle_state,
        operation_cell(row.operations),
        step_cell(op) if op else NONE,
        duration(op.step_age_seconds) if op else NONE,
        relative(row.earliest_expiry, now),
        relative(row.next_renewal_at, now),
        one_line(row.last_error, ERROR_WIDTH),
    ]


GATEWAY_HEADERS = (
    "GATEWAY", "CLASS", "STATE", "OPERATION", "STEP", "STEP AGE", "EXPIRES", "NEXT RENEWAL",
    "LAST ERROR",
)


def gateways_table(doc: GatewayList) -> str:
    if not doc.gateways:
        return "no gateways in the store"
    now = doc.generated_at
    return table(GATEWAY_HEADERS, [gateway_cells(row, now) for row in doc.gateways])


# --- timeline ------------------------------------------------------------------------------------
TIMELINE_HEADERS = (
    "TIME", "OP", "STATE", "STEP", "ATTEMPT", "OUTCOME", "DURATION", "ACTOR", "MESSAGE",
)


def timeline_rows(entries: Sequence[JournalEntry]) -> list[list[str]]:
    return [
        [
            timestamp(e.started_at),
            f"#{e.operation_id}" + (f" {e.machine}" if e.machine else ""),
            e.state,
            e.step or NONE,
            str(e.attempt) if e.step else NONE,
            e.outcome,
            duration(e.duration_seconds) if e.kind == "attempt" else NONE,
            e.actor,
            one_line((f"×{e.repeats} " if e.repeats > 1 else "") + (e.message or ""),
                     MESSAGE_WIDTH),
        ]
        for e in entries
    ]


OPERATION_HEADERS = (
    "ID", "MACHINE", "LANE", "STATE", "STATUS", "STEP", "CREATED", "FINISHED", "LAST ERROR",
)


def operation_rows(ops: Sequence[OperationSummary]) -> list[list[str]]:
    return [
        [
            f"#{op.id}",
            f"{op.machine} v{op.machine_version}",
            op.lane,
            op.state,
            op.status,
            step_cell(op),
            timestamp(op.created_at),
            timestamp(op.finished_at),
            one_line(op.last_error, ERROR_WIDTH),
        ]
        for op in ops
    ]


# --- show ----------------------------------------------------------------------------------------
def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def _section(title: str, body: str, empty: str) -> str:
    return f"{title}\n" + (body if body else f"  {empty}")


def show_table(doc: GatewayDetail) -> str:
    now = doc.generated_at
    gw = doc.gateway
    parts = [
        _fields(
            [
                ("Gateway", f"{gw.namespace}/{gw.name}"),
                ("UID", gw.uid + (f" (older records: {', '.join(doc.other_uids)})"
                                  if doc.other_uids else "")),
                ("Class", gw.gateway_class or NONE),
                ("State", gw.lifecycle_state),
                ("Generation", str(doc.generation) if doc.generation is not None else NONE),
                ("Created", timestamp(doc.created_at)),
                ("Updated", timestamp(gw.updated_at)),
                *([("Deleted", timestamp(gw.deleted_at))] if gw.deleted_at else []),
                ("Last error", one_line(gw.last_error)),
            ]
        )
    ]
    parts.append(
        _section(
            f"Children ({doc.children_ready}/{doc.children_total} ready)",
            table(
                ("KIND", "NAMESPACE", "NAME", "READY", "ROUTE", "CHILD", "UPDATED"),
                [
                    [
                        c.kind,
                        c.namespace or "(cluster)",
                        c.name,
                        "yes" if c.ready else "no",
                        c.route or NONE,
                        c.child_id,
                        timestamp(c.updated_at),
                    ]
                    for c in doc.children
                ],
                indent="  ",
            ),
            "none recorded",
        )
    )
    parts.append(
        _section(
            "Certificates",
            table(
                ("LISTENER", "OBJECT", "STATE", "ATTACHED", "NOT AFTER", "RENEWAL", "SHA-256"),
                [
                    [
                        c.listener,
                        c.object_name,
                        c.state,
                        "yes" if c.attached else "no",
                        relative(c.not_after, now),
                        relative(c.renewal_at, now),
                        c.fingerprint_sha256 or NONE,
                    ]
                    for c in doc.certificates
                ],
                indent="  ",
            ),
            "none recorded",
        )
    )
    flights = []
    for op in doc.operations_in_flight:
        s = op.summary
        lines = [
            f"  #{s.id} {s.machine} v{s.machine_version}  lane {s.lane}  state {s.state}  "
            f"status {s.status}",
            f"  step {step_cell(s)} for {duration(s.step_age_seconds)}  "
            f"next run {relative(s.next_run_at, now) if s.next_run_at else 'now'}  "
            f"lease {op.lease_owner or NONE}",
        ]
        if s.last_error:
            lines.append(f"  last error: {one_line(s.last_error)}")
        if op.context is not None:
            body = json.dumps(op.context, indent=2, sort_keys=True, default=str)
            lines.append("  context:")
            lines.extend("    " + line for line in body.splitlines())
        else:
            lines.append(f"  context (unreadable): {one_line(op.context_raw, MESSAGE_WIDTH)}")
        flights.append("\n".join(lines))
    parts.append(_section("Operation in flight", "\n\n".join(flights), "none"))
    parts.append(
        _section(
            "Recent operations",
            table(OPERATION_HEADERS, operation_rows(doc.recent_operations), indent="  "),
            "none",
        )
    )
    parts.append(
        _section(
            "Recent journal (newest first)",
            table(TIMELINE_HEADERS, timeline_rows(doc.recent_journal), indent="  "),
            "empty",
        )
    )
    if doc.live is not None:
        parts.append(live_section(doc.live, store_uid=gw.uid))
    return "\n\n".join(parts)


CONDITION_HEADERS = ("TYPE", "STATUS", "REASON", "GENERATION", "SINCE", "MESSAGE")


def _condition_rows(conditions: Sequence[ConditionView], indent: str) -> str:
    return table(
        CONDITION_HEADERS,
        [
            [
                c.type,
                c.status,
                c.reason or NONE,
                str(c.observed_generation) if c.observed_generation is not None else NONE,
                c.last_transition_time or NONE,
                one_line(c.message, MESSAGE_WIDTH),
            ]
            for c in conditions
        ],
        indent=indent,
    )


def live_section(live: LiveGateway, *, store_uid: str) -> str:
    title = f"Cluster (live from {live.source})"
    if not live.found:
        return f"{title}\n  no such Gateway in the cluster (deleted, or another cluster)"
    if live.store_uid_matches is False:
        identity = (f"uid {live.uid} is NOT the store's {store_uid}: the Gateway was re-created; "
                    "the store's record is about the old one")
    else:
        identity = f"uid {live.uid} (same as the store)"
    lines = [
        title,
        f"  {identity}",
        f"  generation {live.generation if live.generation is not None else NONE}  "
        f"addresses {', '.join(live.addresses) or NONE}",
        "  Conditions",
        _condition_rows(live.conditions, "    ") or "    none",
    ]
    for listener in live.listeners:
        routes = listener.attached_routes if listener.attached_routes is not None else NONE
        lines.append(f"  Listener {listener.name} (attached routes: {routes})")
        lines.append(_condition_rows(listener.conditions, "    ") or "    none")
    return "\n".join(lines)


# --- history -------------------------------------------------------------------------------------
def history_table(doc: History) -> str:
    gw = doc.gateway
    head = f"History of {gw.namespace}/{gw.name} (uid {gw.uid})"
    ops = table(
        (*OPERATION_HEADERS[:-1], "DURATION", "LAST ERROR"),
        [
            [*cells[:-1], duration(o.duration_seconds), cells[-1]]
            for o, cells in zip(
                doc.operations, operation_rows([o.summary for o in doc.operations]), strict=True
            )
        ],
        indent="  ",
    )
    note = (f"; the newest {doc.limit} entries, older ones exist (--limit)"
            if doc.truncated else "")
    return "\n\n".join(
        [
            head,
            _section("Operations", ops, "none"),
            _section(
                f"Timeline (oldest first{note})",
                table(TIMELINE_HEADERS, timeline_rows(doc.entries), indent="  "),
                "empty",
            ),
        ]
    )


# --- schedule ------------------------------------------------------------------------------------
def schedule_table(doc: Schedule) -> str:
    if not doc.renewals:
        return "no renewals scheduled"
    now = doc.generated_at
    return table(
        ("RENEWAL", "DUE", "GATEWAY", "LISTENER", "CERTIFICATE", "NOT AFTER", "SHA-256"),
        [
            [
                timestamp(r.renewal_at),
                "overdue " + duration(-r.due_in_seconds) if r.overdue
                else "in " + duration(r.due_in_seconds),
                f"{r.gateway.namespace}/{r.gateway.name}",
                r.listener,
                r.object_name,
                relative(r.not_after, now),
                (r.fingerprint_sha256[:16] + "…") if r.fingerprint_sha256 else NONE,
            ]
            for r in doc.renewals
        ],
    )


def graph_text(doc: Graph) -> str:
    return doc.mermaid.rstrip("\n")


def action_text(doc: ActionResult) -> str:
    return doc.message


def format_document(doc: Document, output: OutputFormat, *, compact: bool = False) -> str:
    """The whole output of a read command (no trailing newline)."""
    if output is OutputFormat.JSON:
        return to_json(doc, compact=compact)
    if output is OutputFormat.YAML:
        return to_yaml(doc).rstrip("\n")
    drawers: dict[type[Any], Any] = {
        GatewayList: gateways_table,
        GatewayDetail: show_table,
        History: history_table,
        Schedule: schedule_table,
        Graph: graph_text,
        ActionResult: action_text,
    }
    text: str = drawers[type(doc)](doc)
    return text
