"""The controller's drift check: is a child of a converged Gateway no longer what bifrost applied?

Read only from the children's informer cache (:mod:`bifrost.controller.children`) and the
inventory: a Gateway with nothing drifted costs no API request and no write. A child counts as
drifted when it was deleted (or replaced by another object of the same name), or when a field
bifrost sets changed (:func:`bifrost.steps.drift.drifted`: fields other managers own and a
template's ``ignoreDrift`` never count). A kind whose watch has not synced yet is not judged.

The repair itself is an ordinary provision (``apply_children`` re-applies exactly the drifted
children with server-side apply), started by the observer even though the Gateway's inputs did
not change. Back-to-back repairs of one Gateway are spaced by a growing delay (0.5 s, doubled
per repair, at most :data:`REPAIR_SPACING_CAP`; reset after :data:`REPAIR_QUIET` without one)
so that a controller fighting bifrost over a field cannot make it write in a tight loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bifrost.api.objects import meta
from bifrost.certificates.rules import is_certificate_child
from bifrost.controller.children import ChildInformers
from bifrost.records import ChildRecord
from bifrost.steps.drift import drifted
from bifrost.steps.provision import SUPERSEDED, describe_record, record_key

__all__ = ["REPAIR_QUIET", "REPAIR_SPACING", "REPAIR_SPACING_CAP", "Drift", "DriftCheck"]

#: The least time between two drift repairs of one Gateway (doubled per back-to-back repair).
REPAIR_SPACING = timedelta(seconds=0.5)
#: The spacing never grows past this.
REPAIR_SPACING_CAP = timedelta(minutes=5)
#: A repair this long after the previous one's spacing ran out starts a new series.
REPAIR_QUIET = timedelta(minutes=2)


@dataclass(frozen=True)
class Drift:
    """One drifted child: its key (child id, ``@route`` for a route child), what it is, how."""

    key: str
    kind: str
    what: str  # "deleted" / "edited"

    def __str__(self) -> str:
        return f"{self.key} ({self.what})"


class DriftCheck:
    """Compares inventory records with the cached children (see the module docstring)."""

    def __init__(self, children: ChildInformers) -> None:
        self.children = children
        #: uid → (time of the last repair, repairs in its series)
        self._last_repair: dict[str, tuple[datetime, int]] = {}

    def check(self, records: Sequence[ChildRecord]) -> list[Drift]:
        out: list[Drift] = []
        for r in records:
            if r.uid is None or SUPERSEDED in r.child_id or is_certificate_child(r.child_id):
                continue  # never applied, waiting for prune, or a certificate (rotation's)
            if not self.children.synced(r.api_version, r.kind):
                continue
            obj = self.children.get(r.api_version, r.kind, r.namespace, r.name)
            if obj is None or str(meta(obj).get("uid") or "") != r.uid:
                out.append(Drift(record_key(r), describe_record(r), "deleted"))
            elif meta(obj).get("deletionTimestamp"):
                continue  # someone deletes it: judged once it is gone
            elif drifted(obj, r.field_shape, r.observed_hash):
                out.append(Drift(record_key(r), describe_record(r), "edited"))
        return out

    def spacing(self, uid: str, now: datetime) -> timedelta:
        """How long after the last repair of ``uid`` the next one may start."""
        last = self._last_repair.get(uid)
        if last is None or self._quiet(last, now):
            return timedelta(0)
        return _spacing(last[1])

    @staticmethod
    def _quiet(last: tuple[datetime, int], now: datetime) -> bool:
        """No repair for :data:`REPAIR_QUIET` beyond the series' current spacing."""
        return now - last[0] >= _spacing(last[1]) + REPAIR_QUIET

    def may_repair(self, uid: str, now: datetime) -> timedelta | None:
        """None when a repair of ``uid`` may start now, else how long to wait."""
        last = self._last_repair.get(uid)
        if last is None:
            return None
        wait = self.spacing(uid, now) - (now - last[0])
        return wait if wait > timedelta(0) else None

    def repairing(self, uid: str, now: datetime) -> None:
        last = self._last_repair.get(uid)
        series = 1 if last is None or self._quiet(last, now) else last[1] + 1
        self._last_repair[uid] = (now, series)

    def forget(self, uid: str) -> None:
        self._last_repair.pop(uid, None)


def _spacing(series: int) -> timedelta:
    """The spacing after the ``series``-th back-to-back repair."""
    factor: int = 2 ** min(series - 1, 30)
    return min(REPAIR_SPACING * factor, REPAIR_SPACING_CAP)
