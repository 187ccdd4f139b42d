"""bifrost-admin's actions change what the engine does next, are journaled with the actor, and
are refused with a one-line reason where the engine does not allow them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from support.admin_fleet import DELIVER, T0, Fleet

from bifrost.engine import Fail, Wait
from bifrost.machines import MachineRegistry, MachineSpec, StateSpec, StepSpec
from bifrost.records import CertificateRecord, GatewayRecord
from bifrost.records import OperationStatus as S


def _refused(fleet: Fleet, *args: str) -> str:
    result = fleet.admin(*args)
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result.stderr


def _waiting(fleet: Fleet) -> GatewayRecord:
    web = fleet.gateway("infra", "web")
    fleet.queue(web, "check", Wait("not issued yet", timedelta(seconds=10)))
    fleet.start(web)
    fleet.run()
    return web


def _admin_entries(fleet: Fleet, gateway: str) -> list[tuple[str, str]]:
    entries = fleet.json("history", gateway)["entries"]
    return [(e["actor"], e["message"]) for e in entries if e["kind"] == "admin"]


def test_a_paused_operation_is_not_picked_up_until_resumed(fleet: Fleet) -> None:
    web = _waiting(fleet)
    out = fleet.ok("pause", "infra/web", "--actor", "alice@laptop", "--reason", "change freeze")
    assert out.startswith("paused operation #1 deliver (state verify) of infra/web: waiting → "
                          "paused")
    fleet.clock.advance(timedelta(minutes=5))
    assert fleet.run() == 0
    assert fleet.calls[(web.uid, "check")] == 1
    [row] = fleet.json("gateways")["gateways"]
    assert row["operations"][0]["status"] == "paused"

    out = fleet.ok("resume", "infra/web", "--actor", "bob@desk")
    assert "paused → waiting" in out
    assert fleet.run() == 1
    assert fleet.calls[(web.uid, "check")] == 2
    assert fleet.store.get_operation(1).status is S.SUCCEEDED
    assert _admin_entries(fleet, "infra/web") == [
        ("alice@laptop", "paused by alice@laptop: change freeze"),
        ("bob@desk", "resumed by bob@desk"),
    ]
    assert "paused by alice@laptop: change freeze" in fleet.ok("history", "infra/web")


def test_retry_re_runs_the_failed_step_once_and_goes_on_from_there(fleet: Fleet) -> None:
    web = fleet.gateway("infra", "web")
    fleet.queue(web, "apply", Fail("quota exceeded"), Fail("quota still exceeded"))
    fleet.start(web)
    fleet.run()
    assert fleet.store.get_operation(1).status is S.FAILED
    row = fleet.json("show", "infra/web")["recent_operations"][0]
    assert (row["status"], row["step"], row["last_error"]) == ("failed", "apply", "quota exceeded")

    assert "failed → waiting" in fleet.ok("retry", "infra/web", "--actor", "ops@bastion")
    assert fleet.run() == 1
    assert fleet.calls[(web.uid, "apply")] == 2  # once more, not per the retry policy
    assert fleet.store.get_operation(1).status is S.FAILED
    fleet.clock.advance(timedelta(hours=1))
    assert fleet.run() == 0  # a failed operation stays failed

    fleet.ok("retry", "infra/web", "--operation", "1", "--actor", "ops@bastion")
    fleet.run()
    assert fleet.store.get_operation(1).status is S.SUCCEEDED
    assert fleet.calls[(web.uid, "render")] == 1  # the steps before the failed one did not re-run
    assert fleet.calls[(web.uid, "apply")] == 3
    history = fleet.json("history", "infra/web")["entries"]
    assert [(e["step"], e["outcome"], e["actor"]) for e in history if e["step"] == "apply"
            or e["kind"] == "admin"] == [
        ("apply", "failed", "engine-0"),
        (None, "admin", "ops@bastion"),
        ("apply", "failed", "engine-0"),
        (None, "admin", "ops@bastion"),
        ("apply", "done", "engine-0"),
    ]


def test_cancel_ends_the_operation_and_frees_the_lane(fleet: Fleet) -> None:
    web = _waiting(fleet)
    assert "waiting → cancelled" in fleet.ok("cancel", "infra/web", "--actor", "alice@laptop")
    fleet.clock.advance(timedelta(minutes=5))
    assert fleet.run() == 0
    assert fleet.json("gateways")["gateways"][0]["operations"] == []
    assert fleet.start(web).id == 2  # the lane is free for a new operation


def test_actions_are_refused_with_one_line_where_the_engine_does_not_allow_them(
    fleet: Fleet,
) -> None:
    web = fleet.gateway("infra", "web")
    fleet.gateway("infra", "api")
    fleet.start(web)
    fleet.run()  # succeeded
    rows_before = len(fleet.store.journal(gateway_uid=web.uid))

    assert "has no active operation; its latest: #1 deliver (state delivered, succeeded" in (
        _refused(fleet, "pause", "infra/web"))
    assert "has no failed operation" in _refused(fleet, "retry", "infra/web")
    assert "has no paused operation" in _refused(fleet, "resume", "infra/web")
    assert "has no active operation" in _refused(fleet, "cancel", "infra/api")
    assert "operation 1 belongs to gateway infra/web" in _refused(
        fleet, "cancel", "infra/api", "--operation", "1")
    assert "operation 99 does not exist" in _refused(fleet, "pause", "infra/web",
                                                     "--operation", "99")
    # an explicit operation in the wrong status: the engine's own reason
    assert "it is succeeded; only failed operations can be retried" in _refused(
        fleet, "retry", "infra/web", "--operation", "1")
    assert len(fleet.store.journal(gateway_uid=web.uid)) == rows_before


def test_the_default_actor_is_user_at_hostname(
    sqlite_fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = sqlite_fleet
    import socket

    _waiting(fleet)
    monkeypatch.setenv("USER", "carol")
    fleet.ok("pause", "infra/web")
    assert _admin_entries(fleet, "infra/web") == [
        (f"carol@{socket.gethostname()}", f"paused by carol@{socket.gethostname()}")]


def test_action_json_output_reports_the_change(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    _waiting(fleet)
    doc = fleet.json("pause", "infra/web", "--actor", "a@b")
    assert {k: doc[k] for k in ("kind", "action", "operation_id", "from_status", "to_status",
                                "actor")} == {
        "kind": "ActionResult", "action": "pause", "operation_id": 1,
        "from_status": "waiting", "to_status": "paused", "actor": "a@b"}


# --- renew ---------------------------------------------------------------------------------------
def test_renew_without_a_rotation_machine_makes_the_renewal_due_now(fleet: Fleet) -> None:
    web = fleet.gateway("infra", "web")
    other = fleet.gateway("apps", "shop")
    fleet.certificate(other, "https", "shop-cert", days_left=30, renew_in_days=2)
    fleet.certificate(web, "https", "web-cert", days_left=40, renew_in_days=10)
    fleet.certificate(web, "https", "web-old", days_left=3, renew_in_days=None, attached=False)
    fleet.clock.advance(timedelta(hours=1))

    doc = fleet.json("renew", "infra/web", "--actor", "alice@laptop")
    assert (doc["action"], doc["certificates"], doc["operation_id"]) == (
        "renew", ["web-cert"], None)
    [cert] = [c for c in fleet.store.list_certificates(gateway_uid=web.uid) if c.attached]
    assert cert.renewal_at == T0 + timedelta(hours=1)
    first = fleet.json("schedule")["renewals"][0]
    assert (first["object_name"], first["due_in_seconds"]) == ("web-cert", 0.0)

    assert "already due; nothing changed" in fleet.ok("renew", "infra/web")


def test_renew_is_refused_without_an_attached_certificate(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    web = fleet.gateway("infra", "web")
    assert "has no certificate in the store" in _refused(fleet, "renew", "infra/web")
    fleet.certificate(web, "https", "web-cert", days_left=40, renew_in_days=10)
    assert "no attached certificate on listener 'admin' (listeners with one: https)" in (
        _refused(fleet, "renew", "infra/web", "--listener", "admin"))
    fleet.gateway("infra", "web", state="deleting")
    assert "infra/web is deleting" in _refused(fleet, "renew", "infra/web")


def test_renew_is_refused_while_a_listener_has_two_attached_certificates(
    sqlite_fleet: Fleet,
) -> None:
    """Renewing one of two would leave the listener with three attached."""
    fleet = sqlite_fleet
    web = fleet.gateway("infra", "web")
    fleet.certificate(web, "https", "web-a", days_left=40, renew_in_days=10)
    fleet.certificate(web, "https", "web-b", days_left=50, renew_in_days=20)
    message = _refused(fleet, "renew", "infra/web")
    assert "listener https has 2 attached certificates (web-a, web-b)" in message
    assert all(c.renewal_at in (T0 + timedelta(days=10), T0 + timedelta(days=20))
               for c in fleet.store.list_certificates(gateway_uid=web.uid))


class RotateContext(BaseModel):
    listener: str
    certificate: str
    reason: str

    @classmethod
    def for_renewal(cls, certificate: CertificateRecord, *, reason: str) -> RotateContext:
        return cls(listener=certificate.listener, certificate=certificate.object_name,
                   reason=reason)


ROTATE = MachineSpec(
    name="rotate_certificate",
    version=1,
    initial="create",
    context_model=RotateContext,
    lane="tls",
    states=(
        StateSpec(name="create", steps=(StepSpec(name="create_certificate"),), on_done="done"),
        StateSpec(name="done", terminal=S.SUCCEEDED),
    ),
)


def test_renew_starts_a_rotation_when_the_rotation_machine_is_registered(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    fleet.registry = MachineRegistry([DELIVER, ROTATE])
    web = fleet.gateway("infra", "web")
    fleet.certificate(web, "https", "web-cert", days_left=40, renew_in_days=10)
    fleet.certificate(web, "admin", "web-admin", days_left=40, renew_in_days=10)

    assert "several listeners (admin, https); choose one with --listener" in _refused(
        fleet, "renew", "infra/web")
    doc: dict[str, Any] = fleet.json("renew", "infra/web", "--listener", "https",
                                     "--actor", "alice@laptop")
    op = fleet.store.get_operation(doc["operation_id"])
    assert (op.machine, op.lane, op.status) == ("rotate_certificate", "tls", S.PENDING)
    assert op.context == {"listener": "https", "certificate": "web-cert",
                          "reason": "renewal requested by alice@laptop"}
    [created] = fleet.store.journal(operation_id=op.id)
    assert (created.message, created.actor) == ("created", "alice@laptop")
    assert "a rotation is already in flight for infra/web: #1 rotate_certificate" in _refused(
        fleet, "renew", "infra/web", "--listener", "admin")


def test_an_operation_id_alone_names_its_gateway_as_the_engines_messages_suggest(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    _waiting(fleet)
    assert "paused operation #1 deliver (state verify) of infra/web" in fleet.ok(
        "pause", "1", "--actor", "a@b")
    assert "resumed operation #1" in fleet.ok("resume", "1", "--actor", "a@b")
    assert "operation 7 does not exist" in _refused(fleet, "cancel", "7")
    result = fleet.admin("cancel", "1", "--operation", "2")
    assert result.exit_code == 2 and "disagree" in result.stderr
