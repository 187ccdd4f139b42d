"""bifrost-admin's read commands show what real engine runs left in the store.

Every scenario is made by the engine's ``Runner`` running the ``deliver`` test machine (see
``support.admin_fleet``) on SQLite and PostgreSQL, with a manual clock; the commands run
in-process and the tests check the content of the table and the JSON documents.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from support.admin_fleet import T0, Fleet

from bifrost.admin import queries
from bifrost.engine import Retry, Wait
from bifrost.records import GatewayRecord
from bifrost.store import SqlStore, StoreUnavailable, open_store


def _waiting_web(fleet: Fleet) -> GatewayRecord:
    """infra/web: operation 'deliver' waiting in verify/check since 12:00:04 (two waits)."""
    web = fleet.gateway("infra", "web")
    fleet.queue(
        web,
        "check",
        Wait("certificate not issued yet", timedelta(seconds=30)),
        Wait("still not issued", timedelta(seconds=30)),
    )
    fleet.start(web, hosts=["www.example.com"], ticket="T-1")
    fleet.run()  # render, apply, check (wait 1)
    fleet.clock.advance(60)
    fleet.run()  # check (wait 2)
    return web


# --- gateways ------------------------------------------------------------------------------------
def test_gateways_shows_each_gateways_state_operation_step_age_expiry_renewal_and_error(
    fleet: Fleet,
) -> None:
    web = _waiting_web(fleet)
    fleet.certificate(web, "https", "web-cert-1", days_left=40, renew_in_days=10)
    fleet.certificate(web, "https-alt", "web-cert-2", days_left=20, renew_in_days=5)
    fleet.certificate(web, "https", "web-cert-0", days_left=2, renew_in_days=1, attached=False)
    shop = fleet.gateway("apps", "shop", state="degraded", error="listener https:\n no cert")
    fleet.step_duration = timedelta(0)
    fleet.start(shop)
    fleet.run()  # shop's operation succeeds: nothing active
    fleet.clock.advance(90)

    doc = fleet.json("gateways")
    assert doc["kind"] == "GatewayList" and doc["schema_version"] == 1 and doc["count"] == 2
    shop_row, web_row = doc["gateways"]  # sorted by namespace/name
    assert (shop_row["namespace"], shop_row["name"], shop_row["lifecycle_state"]) == (
        "apps",
        "shop",
        "degraded",
    )
    assert shop_row["operations"] == []
    assert shop_row["last_error"] == "listener https:\n no cert"
    assert shop_row["earliest_expiry"] is None and shop_row["next_renewal_at"] is None

    [op] = web_row["operations"]
    assert (op["machine"], op["state"], op["status"], op["step"], op["attempt"]) == (
        "deliver",
        "verify",
        "waiting",
        "check",
        2,
    )
    # check was first attempted at T0+4s (render and apply took 2 s each)
    assert op["step_started_at"] == "2026-03-01T12:00:04Z"
    assert fleet.clock.now() == T0 + timedelta(seconds=4 + 2 + 60 + 2 + 90)
    assert op["step_age_seconds"] == 154.0
    # only attached certificates count; the detached one expiring in 2 days does not
    assert web_row["earliest_expiry"] == "2026-03-21T12:00:00Z"
    assert web_row["next_renewal_at"] == "2026-03-06T12:00:00Z"
    assert web_row["gateway_class"] == "public"

    table = fleet.ok("gateways")
    lines = table.splitlines()
    assert lines[0].split() == [
        "GATEWAY",
        "CLASS",
        "STATE",
        "OPERATION",
        "STEP",
        "STEP",
        "AGE",
        "EXPIRES",
        "NEXT",
        "RENEWAL",
        "LAST",
        "ERROR",
    ]
    assert lines[1].startswith("apps/shop") and "degraded" in lines[1]
    assert lines[1].rstrip().endswith("listener https: no cert")  # one line
    web_line = lines[2]
    assert web_line.startswith("infra/web")
    assert f"#{op['id']} deliver verify (waiting)" in web_line
    assert "check #2" in web_line and "2m34s" in web_line
    assert "2026-03-21 12:00:00Z (in 19d23h)" in web_line
    assert "2026-03-06 12:00:00Z (in 4d23h)" in web_line


def test_gateways_filters_by_namespace_class_and_state(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.gateway("infra", "web", cls="public")
    fleet.gateway("infra", "api", cls="internal", state="provisioning")
    fleet.gateway("apps", "shop", cls="public")

    def names(*args: str) -> list[str]:
        return [f"{g['namespace']}/{g['name']}" for g in fleet.json("gateways", *args)["gateways"]]

    assert names() == ["apps/shop", "infra/api", "infra/web"]
    assert names("--namespace", "infra") == ["infra/api", "infra/web"]
    assert names("--class", "public") == ["apps/shop", "infra/web"]
    assert names("--state", "provisioning") == ["infra/api"]
    assert names("-n", "infra", "--class", "public") == ["infra/web"]
    assert fleet.ok("gateways", "--state", "deleting").strip() == "no gateways in the store"


def test_yaml_output_is_the_same_document_as_json(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    _waiting_web(fleet)
    for command in (["gateways"], ["show", "infra/web"], ["history", "infra/web"], ["schedule"]):
        as_json = json.loads(fleet.ok(*command, "-o", "json"))
        as_yaml = yaml.safe_load(fleet.ok(*command, "-o", "yaml"))
        assert as_yaml == as_json, command


# --- show ----------------------------------------------------------------------------------------
def test_show_lists_children_certificates_operation_in_flight_with_context_and_journal(
    fleet: Fleet,
) -> None:
    web = _waiting_web(fleet)
    fleet.child(web, "gateway", "Gateway", "web-istio", ready=False)
    fleet.child(web, "service", "Service", "web-svc", ready=True)
    fleet.child(web, "clusterissuer", "ClusterIssuer", "web-ca", ready=True, namespace=None)
    fleet.certificate(
        web, "https", "web-cert-1", days_left=40, renew_in_days=10, fingerprint="c0ffee" + "0" * 58
    )

    doc = fleet.json("show", "infra/web", "--journal", "3")
    assert doc["kind"] == "GatewayDetail"
    assert (doc["children_ready"], doc["children_total"]) == (2, 3)
    children = {c["name"]: c for c in doc["children"]}
    assert children["web-istio"]["ready"] is False
    assert children["web-ca"]["namespace"] is None
    [cert] = doc["certificates"]
    assert cert["fingerprint_sha256"] == "c0ffee" + "0" * 58
    assert cert["not_after"] == "2026-04-10T12:00:00Z" and cert["attached"] is True
    [flight] = doc["operations_in_flight"]
    assert flight["context"] == {"hosts": ["www.example.com"], "ticket": "T-1"}
    assert flight["engine"]["step"] == "check" and flight["engine"]["failures"] == 0
    assert flight["summary"]["status"] == "waiting"
    # the newest three journal entries, newest first
    assert [(e["step"], e["outcome"], e["message"]) for e in doc["recent_journal"]] == [
        ("check", "wait", "still not issued"),
        ("check", "wait", "certificate not issued yet"),
        ("apply", "done", "apply done → verify"),
    ]

    table = fleet.ok("show", "infra/web")
    assert "Children (2/3 ready)" in table
    assert any(
        line.split()[:4] == ["Gateway", "infra", "web-istio", "no"] for line in table.splitlines()
    )
    assert any(
        line.split()[:3] == ["ClusterIssuer", "(cluster)", "web-ca"] for line in table.splitlines()
    )
    assert "c0ffee" + "0" * 58 in table
    assert "2026-04-10 12:00:00Z" in table
    assert '"ticket": "T-1"' in table
    assert "state verify  status waiting" in table
    assert "certificate not issued yet" in table


def test_show_of_a_quiet_gateway_says_none_in_flight(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.gateway("infra", "web")
    table = fleet.ok("show", "infra/web")
    assert "Operation in flight\n  none" in table
    assert "Children (0/0 ready)\n  none recorded" in table
    assert fleet.json("show", "infra/web")["operations_in_flight"] == []


# --- history -------------------------------------------------------------------------------------
def test_history_is_a_timeline_of_attempts_with_durations_outcomes_and_messages(
    fleet: Fleet,
) -> None:
    api = fleet.gateway("infra", "api")
    fleet.queue(api, "check", Retry("connection refused", backoff=timedelta(seconds=10)))
    fleet.queue(api, "apply", Wait("waiting for quota", timedelta(seconds=5)))
    op = fleet.start(api)
    fleet.step_duration = timedelta(seconds=3)
    fleet.run()  # render done, apply waits
    fleet.clock.advance(5)
    fleet.run()  # apply done, check retries
    fleet.clock.advance(10)
    fleet.run()  # check done → delivered

    doc = fleet.json("history", "infra/api")
    assert doc["kind"] == "History" and doc["truncated"] is False
    [summary] = doc["operations"]
    assert summary["summary"]["status"] == "succeeded"
    assert summary["duration_seconds"] == 3 * 5 + 5 + 10  # five attempts of 3 s, two pauses
    entries = [
        (e["kind"], e["step"], e["attempt"], e["outcome"], e["duration_seconds"], e["actor"])
        for e in doc["entries"]
    ]
    assert entries == [
        ("transition", None, 0, "transition", 0.0, "controller-0"),
        ("attempt", "render", 1, "done", 3.0, "engine-0"),
        ("attempt", "apply", 1, "wait", 3.0, "engine-0"),
        ("attempt", "apply", 2, "done", 3.0, "engine-0"),
        ("attempt", "check", 1, "retry", 3.0, "engine-0"),
        ("attempt", "check", 2, "done", 3.0, "engine-0"),
    ]
    assert all(e["operation_id"] == op.id and e["machine"] == "deliver" for e in doc["entries"])
    assert "connection refused" in doc["entries"][4]["message"]

    lines = fleet.ok("history", "infra/api").splitlines()
    rows = lines[lines.index("Timeline (oldest first)") + 2 :]
    assert [line.split()[5:9] for line in rows[1:]] == [
        ["render", "1", "done", "3.0s"],
        ["apply", "1", "wait", "3.0s"],
        ["apply", "2", "done", "3.0s"],
        ["check", "1", "retry", "3.0s"],
        ["check", "2", "done", "3.0s"],
    ]
    assert "waiting for quota" in rows[2]


def test_history_limit_keeps_the_newest_rows_and_says_older_ones_exist(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    api = fleet.gateway("infra", "api")
    fleet.start(api)
    fleet.run()
    doc = fleet.json("history", "infra/api", "--limit", "2")
    assert doc["truncated"] is True and doc["limit"] == 2
    # an attempt's STARTED row merges into its outcome: entries, not rows, are counted
    assert [(e["step"], e["outcome"]) for e in doc["entries"]] == [
        ("apply", "done"),
        ("check", "done"),
    ]
    assert not fleet.json("history", "infra/api", "--limit", "4")["truncated"]
    assert "older ones exist" in fleet.ok("history", "infra/api", "--limit", "2")


def test_history_shows_an_attempt_cut_short_by_a_crash_as_interrupted(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    api = fleet.gateway("infra", "api")

    class Crash(BaseException):
        pass

    def crash(*_: object) -> None:
        raise Crash

    fleet.start(api)
    fleet.runner.steps["render"].run = crash  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        fleet.run()
    doc = fleet.json("history", "infra/api")
    assert doc["entries"][-1]["outcome"] == "in_flight"  # the lease is still held
    # the lease expires; another runner re-runs the step
    del fleet.runner.steps["render"].run
    fleet.clock.advance(timedelta(minutes=6))
    fleet.run()
    outcomes = [
        (e["step"], e["attempt"], e["outcome"])
        for e in fleet.json("history", "infra/api")["entries"]
        if e["step"] == "render"
    ]
    assert outcomes == [("render", 1, "interrupted"), ("render", 2, "done")]


# --- schedule ------------------------------------------------------------------------------------
def test_schedule_lists_attached_certificates_by_renewal_time_soonest_first(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    web = fleet.gateway("infra", "web")
    shop = fleet.gateway("apps", "shop")
    fleet.certificate(web, "https", "web-cert", days_left=40, renew_in_days=10)
    fleet.certificate(shop, "https", "shop-cert", days_left=30, renew_in_days=-1)
    fleet.certificate(shop, "admin", "shop-admin", days_left=60, renew_in_days=20)
    fleet.certificate(web, "old", "web-old", days_left=1, renew_in_days=0.5, attached=False)

    doc = fleet.json("schedule")
    assert [(r["gateway"]["name"], r["object_name"], r["overdue"]) for r in doc["renewals"]] == [
        ("shop", "shop-cert", True),
        ("web", "web-cert", False),
        ("shop", "shop-admin", False),
    ]
    assert doc["renewals"][0]["due_in_seconds"] == -86400.0
    lines = fleet.ok("schedule").splitlines()
    assert lines[1].split()[:5] == ["2026-02-28", "12:00:00Z", "overdue", "24h00m", "apps/shop"]
    assert lines[2].split()[4:7] == ["infra/web", "https", "web-cert"]
    assert [r["object_name"] for r in fleet.json("schedule", "--limit", "1")["renewals"]] == [
        "shop-cert"
    ]


# --- graph ---------------------------------------------------------------------------------------
def test_graph_highlights_the_state_of_the_gateways_operation(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    _waiting_web(fleet)
    text = fleet.ok("graph", "deliver", "--gateway", "infra/web")
    assert text.splitlines()[1] == "deliver v1"
    assert "stateDiagram-v2" in text
    assert "Class verify s_active" in text
    assert "Class prepare s_default" in text
    assert "verify --> delivered: done" in text

    plain = fleet.ok("graph", "deliver")
    assert [line.strip() for line in plain.splitlines() if "s_active" in line] == [
        "classDef s_active color:red,fill:darksalmon"
    ]
    doc = fleet.json("graph", "deliver", "--gateway", "infra/web")
    assert (doc["machine"], doc["current_state"], doc["gateway"]["name"]) == (
        "deliver",
        "verify",
        "web",
    )


# --- watch ---------------------------------------------------------------------------------------
def test_watch_redraws_gateways_as_the_engine_moves_on(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    web = _waiting_web(fleet)

    def sleep(seconds: float) -> None:  # time passes and the engine works between frames
        fleet.clock.advance(seconds)
        fleet.run()

    assert web is not None
    result = fleet.admin(
        "gateways", "--watch", "--interval", "30", "--watch-count", "2", env=fleet.env(sleep=sleep)
    )
    assert result.exit_code == 0, result.stderr
    frames = result.stdout.split("Every 30s: bifrost-admin gateways")
    assert len(frames) == 3  # '' + two frames
    assert "deliver verify (waiting)" in frames[1]
    assert "deliver" not in frames[2]  # the third check was done: nothing in flight

    result = fleet.admin(
        "show",
        "infra/web",
        "-w",
        "--watch-count",
        "2",
        "-o",
        "json",
        env=fleet.env(sleep=lambda s: None),
    )
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["kind"] for d in docs] == ["GatewayDetail", "GatewayDetail"]


def test_gateways_reads_certificate_expiries_the_same_whichever_way(
    sqlite_fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few gateways: one indexed read each; many: one read of all certificates, or the store's
    aggregate query when it has one. The answer is the same."""
    fleet = sqlite_fleet
    web = fleet.gateway("infra", "web")
    api = fleet.gateway("infra", "api")
    fleet.gateway("infra", "bare")
    fleet.certificate(web, "https", "web-1", days_left=40, renew_in_days=10)
    fleet.certificate(web, "https", "web-2", days_left=30, renew_in_days=None)
    fleet.certificate(api, "https", "api-1", days_left=5, renew_in_days=1, attached=False)
    fleet.certificate(api, "https", "api-2", days_left=50, renew_in_days=20)
    expected = {
        "api": ("2026-04-20T12:00:00Z", "2026-03-21T12:00:00Z"),
        "bare": (None, None),
        "web": ("2026-03-31T12:00:00Z", "2026-03-11T12:00:00Z"),
    }

    def seen() -> dict[str, tuple[str | None, str | None]]:
        return {g["name"]: (g["earliest_expiry"], g["next_renewal_at"])
                for g in fleet.json("gateways")["gateways"]}

    assert seen() == expected
    monkeypatch.setattr(queries, "PER_GATEWAY_CERTIFICATE_READS", 0)
    assert seen() == expected

    class AggregatingStore(SqlStore):
        aggregated = 0

        def certificate_expiries(self) -> dict[str, queries.Expiry]:
            AggregatingStore.aggregated += 1
            return queries.expiries(self.list_certificates())

    def opener(url: str) -> SqlStore:
        plain = open_store(url)
        return AggregatingStore(plain._engine, plain._backend)

    result = fleet.admin("gateways", "-o", "json", env=fleet.env(opener=opener))
    assert {g["name"]: (g["earliest_expiry"], g["next_renewal_at"])
            for g in json.loads(result.stdout)["gateways"]} == expected
    assert AggregatingStore.aggregated == 1


def test_show_names_older_records_of_a_re_created_gateway(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.store.upsert_gateway(uid="old-uid", namespace="infra", name="web", now=T0)
    fleet.clock.advance(60)
    fleet.gateway("infra", "web")  # uid-infra-web, created later: the current one
    doc = fleet.json("show", "infra/web")
    assert (doc["gateway"]["uid"], doc["other_uids"]) == ("uid-infra-web", ["old-uid"])
    assert "uid-infra-web (older records: old-uid)" in fleet.ok("show", "infra/web")


def test_graph_of_a_machine_the_gateway_has_not_run_highlights_nothing_and_says_so(
    sqlite_fleet: Fleet,
) -> None:
    fleet = sqlite_fleet
    fleet.gateway("infra", "web")
    result = fleet.admin("graph", "deliver", "--gateway", "infra/web")
    assert result.exit_code == 0
    assert "Class prepare s_default" in result.stdout and "s_active\n" not in result.stdout
    assert result.stderr == (
        "note: gateway infra/web has no operation of machine deliver; nothing highlighted\n")


def test_watch_survives_a_store_that_is_unavailable_for_a_while(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.gateway("infra", "web")
    outage = {"on": False}

    class FlakyStore(SqlStore):  # the real store, made unavailable between two frames
        def list_gateways(self, **kw: Any) -> list[GatewayRecord]:
            if outage["on"]:
                raise StoreUnavailable("database at sqlite:///x is unavailable: database is locked")
            return super().list_gateways(**kw)

    def opener(url: str) -> SqlStore:
        plain = open_store(url)
        return FlakyStore(plain._engine, plain._backend)

    def sleep(_: float) -> None:
        outage["on"] = not outage["on"]

    result = fleet.admin("gateways", "-w", "--watch-count", "3",
                         env=fleet.env(opener=opener, sleep=sleep))
    assert result.exit_code == 0, result.stderr
    frames = result.stdout.split("Every 2s: bifrost-admin gateways")[1:]
    assert ["infra/web" in f for f in frames] == [True, False, True]
    assert "store unavailable, trying again in 2s: database at sqlite:///x is unavailable" in (
        frames[1])
