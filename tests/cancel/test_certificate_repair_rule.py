"""Which certificate a listener keeps when it has more than one attached outside a rotation
(``bifrost.triggers.certificate_repair.keeper``): the newest valid one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bifrost.records import CertificateRecord
from bifrost.triggers.certificate_repair import extras, keeper

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _cert(name: str, *, issued_days_ago: float, lifetime_days: float = 90,
          attached_at: datetime | None = None) -> CertificateRecord:
    not_before = NOW - timedelta(days=issued_days_ago)
    return CertificateRecord(
        gateway_uid="gw", listener="https", object_name=name, secret_name=f"{name}-tls",
        serial=None, fingerprint_sha256=None, not_before=not_before,
        not_after=not_before + timedelta(days=lifetime_days), renewal_at=None, attached=True,
        state="attached", updated_at=NOW, attached_at=attached_at)


def test_the_newest_valid_one_is_kept_and_the_others_detached_oldest_first() -> None:
    old, mid, new = (_cert("old", issued_days_ago=60), _cert("mid", issued_days_ago=30),
                     _cert("new", issued_days_ago=1))
    assert keeper([old, new, mid], now=NOW).object_name == "new"
    assert [c.object_name for c in extras([new, old, mid], now=NOW)] == ["old", "mid"]


def test_an_expired_or_not_yet_valid_one_is_not_kept_while_a_valid_one_exists() -> None:
    expired = _cert("expired", issued_days_ago=10, lifetime_days=5)
    future = _cert("future", issued_days_ago=-1)
    valid = _cert("valid", issued_days_ago=40)
    assert keeper([expired, future, valid], now=NOW).object_name == "valid"


def test_with_none_valid_the_newest_is_kept_anyway() -> None:
    a = _cert("a", issued_days_ago=100, lifetime_days=10)
    b = _cert("b", issued_days_ago=50, lifetime_days=10)
    assert keeper([a, b], now=NOW).object_name == "b"


def test_same_not_before_the_later_attached_wins() -> None:
    first = _cert("zz-first", issued_days_ago=3, attached_at=NOW - timedelta(hours=2))
    second = _cert("aa-second", issued_days_ago=3, attached_at=NOW - timedelta(hours=1))
    assert keeper([first, second], now=NOW).object_name == "aa-second"


def test_one_attached_is_nothing_to_repair() -> None:
    assert extras([_cert("only", issued_days_ago=1)], now=NOW) == []
