"""The Gateway lifecycle in ``bifrost-admin``: STATE and LAST ERROR columns, ``--state`` (only
lifecycle states), ``show``'s deletion time, and ``graph lifecycle`` — found although no
registry of runnable machines holds it — with the Gateway's state highlighted."""

from __future__ import annotations

from datetime import timedelta

from support.admin_fleet import Fleet


def test_gateways_table_and_filter_by_lifecycle_state(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.gateway("apps", "web", state="ready")
    fleet.gateway("apps", "api", state="failed",
                  error="provision operation 3 failed: template error")
    table = fleet.ok("gateways")
    header, *rows = table.splitlines()
    assert "STATE" in header and "LAST ERROR" in header
    api = next(r for r in rows if r.startswith("apps/api"))
    assert " failed " in api and "template error" in api
    assert [r["name"] for r in fleet.json("gateways", "--state", "failed")["gateways"]] == [
        "api"]
    assert [r["name"] for r in fleet.json("gateways", "--state", "ready")["gateways"]] == [
        "web"]
    refused = fleet.admin("gateways", "--state", "programmed")
    assert refused.exit_code == 2
    assert "--state 'programmed' is not a lifecycle state" in refused.stderr
    assert "pending, provisioning, ready, rotating, degraded, failed, deleting, deleted" in (
        refused.stderr)


def test_show_and_json_carry_state_error_and_deletion_time(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    gw = fleet.gateway("apps", "old", state="deleting")
    when = fleet.clock.now() + timedelta(minutes=3)
    fleet.store.set_gateway_state(gw.uid, lifecycle_state="deleted", now=when, deleted_at=when)
    row = fleet.json("gateways")["gateways"][0]
    assert (row["lifecycle_state"], row["last_error"]) == ("deleted", None)
    assert row["deleted_at"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = fleet.json("show", "apps/old")
    assert detail["gateway"]["deleted_at"] == row["deleted_at"]
    text = fleet.ok("show", "apps/old")
    assert "State" in text and "deleted" in text and "Deleted" in text


def test_graph_lifecycle_highlights_the_gateways_state(sqlite_fleet: Fleet) -> None:
    fleet = sqlite_fleet
    fleet.gateway("apps", "web", state="rotating")
    doc = fleet.json("graph", "lifecycle", "--gateway", "apps/web")
    assert (doc["machine"], doc["machine_version"], doc["current_state"]) == (
        "lifecycle", 1, "rotating")
    assert "Class rotating s_active" in doc["mermaid"]
    assert "ready --> rotating: rotate" in doc["mermaid"]
    bare = fleet.json("graph", "lifecycle")
    assert bare["current_state"] is None
    assert " s_active\n" not in bare["mermaid"].replace("classDef s_active", "")
    unknown = fleet.admin("graph", "nope")
    assert unknown.exit_code == 2 and "lifecycle" in unknown.stderr
