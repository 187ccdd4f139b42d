"""Store contract: concurrent claimers never get the same operation (real threads, real
databases: SQLite's write lock, PostgreSQL's SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bifrost.records import JournalOutcome, NewOperation, OperationStatus
from bifrost.store import SqlStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPERATIONS = 120


@pytest.mark.parametrize(("threads", "limit"), [(2, 1), (4, 3)])
def test_concurrent_claimers_never_share_an_operation(
    store: SqlStore, threads: int, limit: int
) -> None:
    ids = {
        store.create_operation(
            NewOperation(
                gateway_uid=f"g{i}",
                namespace="ns",
                name=f"g{i}",
                machine="provision",
                machine_version=1,
                state="s",
            ),
            now=T0,
            actor="c",
        ).id
        for i in range(OPERATIONS)
    }
    start = threading.Barrier(threads)
    claims: dict[str, list[int]] = {f"w{n}": [] for n in range(threads)}
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        try:
            start.wait()
            empty_in_a_row = 0
            while empty_in_a_row < 3:
                got = store.claim_due(
                    owner=owner, now=T0, lease_for=timedelta(hours=1), limit=limit
                )
                if not got:
                    empty_in_a_row += 1
                    continue
                empty_in_a_row = 0
                for op in got:
                    assert op.lease_owner == owner
                    claims[owner].append(op.id)
                    # every other write is fenced; a double claim would surface as LeaseLost
                    op = store.begin_step(
                        op.id, owner=owner, version=op.version, now=T0, step="s", attempt=1
                    )
                    store.finish_step(
                        op.id,
                        owner=owner,
                        version=op.version,
                        now=T0,
                        outcome=JournalOutcome.DONE,
                        state="done",
                        status=OperationStatus.SUCCEEDED,
                        context={},
                        next_run_at=None,
                    )
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(o,), name=o) for o in claims]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool)
    assert errors == []

    counts = Counter(i for got in claims.values() for i in got)
    assert [i for i, n in counts.items() if n > 1] == []
    assert set(counts) == ids
    assert store.claim_due(owner="late", now=T0, lease_for=timedelta(hours=1), limit=10) == []
    succeeded = store.list_operations(statuses=[OperationStatus.SUCCEEDED], limit=10_000)
    assert len(succeeded) == OPERATIONS
