"""The provision and teardown machines on the real engine, a SQLite store and the devcluster with
its peers: convergence, no writes when nothing changed, pruning (cluster-scoped too), ordered and
complete teardown, visible render and admission failures, and crash recovery without duplicates.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from typing import Any

from provision_kit import LB_API, VALUES, Harness, OffsetClock, blueprint_children

from bifrost.clock import ManualClock, SystemClock
from bifrost.records import ChildRecord, OperationStatus
from bifrost.render import Blueprint
from bifrost.steps.ownership import GATEWAY_UID_LABEL
from bifrost.steps.provision import CHILD_ID_LABEL, deletion_waves

KINDS = {
    "config": ("v1", "ConfigMap", "configmaps"),
    "cert": ("cert-manager.io/v1", "Certificate", "certificates"),
    "lb": (LB_API, "LB", "lbs"),
    "child-gw": ("gateway.networking.k8s.io/v1", "Gateway", "gateways"),
}


def child_writes(h: Harness, since: int = 0) -> list[tuple[str, str, str | None]]:
    """(verb, resource, name) of the write requests to child resources, oldest first."""
    resources = {plural for _, _, plural in KINDS.values()}
    out: list[tuple[str, str, str | None]] = []
    for req, status in h.cluster.request_log.recent()[since:]:
        if req.verb in ("apply", "patch", "create", "update", "delete") and status < 300 \
                and req.resource in resources and req.subresource is None \
                and req.name not in (None, "edge") and (
                    req.namespace == h.namespace
                    or (req.namespace is None and (req.name or "").startswith(h.namespace))
                ):
            out.append((req.verb, req.resource, req.name))
    return out


def mark(h: Harness) -> int:
    return len(h.cluster.request_log.recent())


def provision(h: Harness, gateway: dict[str, Any], **kwargs: Any) -> Any:
    op = h.start_provision(gateway)
    return h.drive(op.id, **kwargs)


def live(h: Harness, child_id: str, uid: str) -> list[dict[str, Any]]:
    api_version, kind, _ = KINDS[child_id]
    return [o for o in h.labelled(api_version, kind, uid)
            if o["metadata"]["labels"].get(CHILD_ID_LABEL) == child_id]


def test_provision_converges_and_records_the_inventory(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    op = provision(h, gw)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert op.state == "done"
    ctx = op.context or {}
    assert sorted(ctx["wanted"]) == ["cert", "child-gw", "config", "lb"]
    assert sorted(ctx["ready"]) == ["cert", "child-gw", "config", "lb"]

    inventory = {r.child_id: r for r in h.store.list_children(uid)}
    assert set(inventory) == {"config", "cert", "lb", "child-gw"}
    for cid, record in inventory.items():
        [obj] = live(h, cid, uid)
        assert record.uid == obj["metadata"]["uid"]
        assert record.ready is True
        assert record.applied_hash is not None and len(record.applied_hash) == 64
        refs = obj["metadata"].get("ownerReferences") or []
        if cid == "lb":  # cluster-scoped: no namespace, no owner reference
            assert record.namespace is None and refs == []
        else:
            assert record.namespace == h.namespace
            assert [(r["kind"], r["uid"]) for r in refs] == [("Gateway", uid)]
    assert inventory["lb"].delete_order == 10 and inventory["child-gw"].delete_order == 20
    # the child gateway attaches the certificate's secret (read from the cert's live state)
    [child] = live(h, "child-gw", uid)
    ref = child["spec"]["listeners"][0]["tls"]["certificateRefs"][0]
    assert ref["name"] == "edge-tls"

    # each child was applied exactly once although the render needed several passes
    applies = [w for w in child_writes(h) if w[0] == "apply"]
    assert sorted(r for _, r, _ in applies) == sorted(p for _, _, p in KINDS.values())


def test_reprovisioning_an_unchanged_gateway_writes_nothing(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    h.cluster.request_log.reset()
    again = provision(h, gw)
    assert again.status is OperationStatus.SUCCEEDED, again.last_error
    assert h.cluster.request_log.count(verbs={"apply", "patch", "create", "update"}) == 0
    assert child_writes(h) == []
    done = [j.output for j in h.store.journal(operation_id=again.id)
            if j.step == "apply_children" and j.outcome.value == "done"]
    assert done == [{"applied": [], "unchanged": ["config", "cert", "lb", "child-gw"],
                     "skipped": [], "repaired": []}]


def test_removed_templates_are_pruned_including_cluster_scoped(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    assert live(h, "lb", uid) and live(h, "config", uid)

    h.set_blueprint([c for c in blueprint_children() if c["id"] not in ("lb", "config")])
    start = mark(h)
    op = provision(h, gw)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert sorted((op.context or {})["pruned"]) == ["config", "lb"]
    assert live(h, "lb", uid) == [] and live(h, "config", uid) == []
    assert {r.child_id for r in h.store.list_children(uid)} == {"cert", "child-gw"}
    # only the deletes: the children still rendered were not written again
    writes = child_writes(h, start)
    assert sorted(writes) == sorted([("delete", "configmaps", "edge-config"),
                                     ("delete", "lbs", f"{h.namespace}-edge-lb")])
    # the LB (deleteOrder 10) went before the ConfigMap (0)
    assert [w[1] for w in writes] == ["lbs", "configmaps"]


def test_teardown_deletes_in_declared_order_then_removes_the_finalizer(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway(finalizer=True)
    uid = gw["metadata"]["uid"]
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    h.kube.delete("gateway.networking.k8s.io/v1", "Gateway", "edge", h.namespace)
    deleting = h.kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge", h.namespace)
    assert deleting is not None and deleting["metadata"].get("deletionTimestamp")

    start = mark(h)
    op = h.drive(h.start_teardown(gw).id)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    deletes = [(r, n) for verb, r, n in child_writes(h, start) if verb == "delete"]
    # child gateway (deleteOrder 20), LB (10), then the certificate and the ConfigMap (group 0,
    # reverse apply order)
    assert deletes == [
        ("gateways", "edge-child"),
        ("lbs", f"{h.namespace}-edge-lb"),
        ("certificates", "edge-cert"),
        ("configmaps", "edge-config"),
    ]
    for cid in KINDS:
        assert live(h, cid, uid) == [], cid
    assert h.store.list_children(uid) == []
    # the finalizer was the last thing holding the Gateway
    assert h.kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge", h.namespace) is None
    assert sorted((op.context or {})["deleted"]) == sorted(KINDS)


def test_teardown_never_deletes_the_children_of_a_recreated_gateway(harness: Harness) -> None:
    h = harness
    children = [c for c in blueprint_children() if c["id"] != "lb"]
    h.set_blueprint(children)
    old = h.create_gateway()
    old_uid = old["metadata"]["uid"]
    assert provision(h, old).status is OperationStatus.SUCCEEDED
    h.kube.delete("gateway.networking.k8s.io/v1", "Gateway", "edge", h.namespace)
    deadline = time.monotonic() + 15
    while any(live(h, cid, old_uid) for cid in ("config", "cert", "child-gw")):
        assert time.monotonic() < deadline, "garbage collector did not delete the old children"
        time.sleep(0.05)
    new = h.create_gateway()
    new_uid = new["metadata"]["uid"]
    assert provision(h, new).status is OperationStatus.SUCCEEDED
    # the old gateway's teardown finds objects of the same names, labelled with the new uid
    op = h.drive(h.start_teardown(old).id)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    for cid in ("config", "cert", "child-gw"):
        assert len(live(h, cid, new_uid)) == 1, cid
    assert h.store.list_children(old_uid) == []
    assert len(h.store.list_children(new_uid)) == 3


def test_a_template_error_fails_the_operation_naming_the_child(harness: Harness) -> None:
    h = harness
    children = blueprint_children()
    children[0]["template"] += "  extra: \"{{ values.nope }}\"\n"
    h.set_blueprint(children)
    gw = h.create_gateway()
    op = provision(h, gw)
    assert op.status is OperationStatus.FAILED
    assert op.state == "render_apply"
    assert op.last_error is not None
    assert "child 'config'" in op.last_error
    assert "spec.children[config].template, line 5" in op.last_error
    assert "nope" in op.last_error
    assert child_writes(h) == []  # nothing applied: the render failed before any write


def test_a_child_rejected_by_the_api_server_fails_with_the_server_message(
    harness: Harness,
) -> None:
    h = harness
    children = blueprint_children()
    cert = next(c for c in children if c["id"] == "cert")
    cert["template"] = cert["template"].replace('["{{ values.hostname }}"]', "42")
    h.set_blueprint(children)
    gw = h.create_gateway()
    op = provision(h, gw)
    assert op.status is OperationStatus.FAILED
    assert op.last_error is not None
    assert "child 'cert'" in op.last_error
    assert "rejected by the API server" in op.last_error
    assert "422" in op.last_error and "spec.dnsNames" in op.last_error


def test_a_crash_mid_apply_resumes_without_duplicate_children(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    op = h.start_provision(gw)

    class Crash(BaseException):
        """Kills the runner like SIGKILL would: nothing after it runs."""

    real_apply = h.kube.apply
    calls: list[str] = []

    def crashing_apply(obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        result = real_apply(obj, **kwargs)
        calls.append(obj["metadata"]["name"])
        if len(calls) == 2:
            raise Crash  # the object is applied, its inventory row is not completed
        return result

    h.kube.apply = crashing_apply  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        h.runner(owner="doomed").run_once()
    assert len(calls) == 2
    h.kube.apply = real_apply  # type: ignore[method-assign]
    crashed = h.store.get_operation(op.id)
    assert crashed.status is OperationStatus.RUNNING and crashed.lease_owner == "doomed"
    # the write-ahead inventory row of the child in flight is there, without its uid yet
    rows = {r.child_id: r for r in h.store.list_children(uid)}
    assert any(r.uid is None for r in rows.values())

    # a new runner, after the dead one's lease, one step per claim and a fresh runner each round
    later = OffsetClock(timedelta(seconds=31))
    final = h.drive(op.id, runner=lambda: h.runner(clock=later, max_steps_per_claim=1))
    assert final.status is OperationStatus.SUCCEEDED, final.last_error
    for cid in KINDS:
        assert len(live(h, cid, uid)) == 1, cid
    rows = {r.child_id: r for r in h.store.list_children(uid)}
    assert set(rows) == set(KINDS)
    assert all(r.uid and r.applied_hash for r in rows.values())
    journal = h.store.journal(operation_id=op.id)
    assert any(j.step == "apply_children" and j.attempt >= 2 for j in journal)


def test_deletion_waves_follow_groups_then_reverse_dependencies() -> None:
    bp = Blueprint.from_dict({"children": blueprint_children()})

    def record(cid: str, order: int = 0) -> ChildRecord:
        from datetime import UTC, datetime

        return ChildRecord(gateway_uid="u", child_id=cid, api_version="v1", kind="K",
                           namespace=None, name=cid, uid=None, applied_hash=None, ready=True,
                           delete_order=order, updated_at=datetime(2026, 1, 1, tzinfo=UTC))

    records = [record("config"), record("cert"), record("lb", 10), record("child-gw", 20),
               record("old-dns", 30)]
    waves = deletion_waves(records, bp, {})
    assert [[r.child_id for r in w] for w in waves] == [
        ["old-dns"], ["child-gw"], ["lb"], ["cert", "config"],
    ]
    # without the blueprint: the inventory's delete_order only
    flat = deletion_waves(records, None, {})
    assert [[r.child_id for r in w] for w in flat] == [
        ["old-dns"], ["child-gw"], ["lb"], ["config", "cert"],
    ]
    # same group, a dependency between them: the dependent goes in an earlier wave
    same = [record("cert"), record("child-gw")]
    assert [[r.child_id for r in w] for w in deletion_waves(same, bp, {})] == [
        ["child-gw"], ["cert"],
    ]


def test_children_carry_the_gateway_uid_and_child_id_labels(harness: Harness) -> None:
    h = harness
    h.set_blueprint([c for c in blueprint_children() if c["id"] == "config"])
    gw = h.create_gateway()
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    [cm] = live(h, "config", gw["metadata"]["uid"])
    labels = cm["metadata"]["labels"]
    assert labels[GATEWAY_UID_LABEL] == gw["metadata"]["uid"]
    assert labels[CHILD_ID_LABEL] == "config"
    assert cm["metadata"]["namespace"] == h.namespace


def test_dependents_wait_for_ready_dependencies_with_a_reason(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    op = provision(h, gw)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    waits = [j.message or "" for j in h.store.journal(operation_id=op.id)
             if j.step == "apply_children" and j.outcome.value == "wait"]
    # the first pass cannot render the child gateway: the certificate is not ready yet
    assert waits and waits[0].startswith("child-gw waits for cert (")


def test_a_changed_value_reapplies_only_the_children_it_renders_into(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    before = {r.child_id: r.applied_hash for r in h.store.list_children(uid)}
    start = mark(h)
    # what the controller does after a policy changed the scheme: a new operation whose context
    # carries the new merged values
    changed = h.start_provision(gw, values={**VALUES, "scheme": "internal"})
    final = h.drive(changed.id)
    assert final.status is OperationStatus.SUCCEEDED, final.last_error
    assert child_writes(h, start) == [("apply", "lbs", f"{h.namespace}-edge-lb")]
    [lb] = live(h, "lb", uid)
    assert lb["spec"]["forProvider"]["scheme"] == "internal"
    after = {r.child_id: r.applied_hash for r in h.store.list_children(uid)}
    assert {cid for cid in after if after[cid] != before[cid]} == {"lb"}


def test_a_renamed_child_replaces_the_old_object_which_is_pruned(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    children = blueprint_children()
    children[0]["template"] = children[0]["template"].replace("-config", "-settings")
    h.set_blueprint(children)
    start = mark(h)
    op = provision(h, gw)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert [o["metadata"]["name"] for o in live(h, "config", uid)] == ["edge-settings"]
    assert child_writes(h, start) == [("apply", "configmaps", "edge-settings"),
                                      ("delete", "configmaps", "edge-config")]
    assert {r.child_id for r in h.store.list_children(uid)} == set(KINDS)


def test_wait_ready_names_the_children_that_are_not_ready(harness: Harness) -> None:
    h = harness
    children = [c for c in blueprint_children() if c["id"] in ("config", "lb")]
    children[0]["readyWhen"] = 'has(object.data.never)'
    h.set_blueprint(children)
    gw = h.create_gateway()
    op = h.start_provision(gw)
    runner = h.runner()
    deadline = time.monotonic() + 10
    while True:
        runner.run_once()
        current = h.store.get_operation(op.id)
        journal = h.store.journal(operation_id=op.id)
        waits = [j.message or "" for j in journal
                 if j.step == "wait_ready" and j.outcome.value == "wait"]
        if waits and "lb" not in waits[-1]:
            break
        assert time.monotonic() < deadline, waits
        time.sleep(0.02)
    assert current.state == "wait_ready"
    assert waits[-1] == "children not ready: config (readyWhen is false)"
    assert {r.child_id: r.ready for r in h.store.list_children(gw["metadata"]["uid"])} == {
        "config": False, "lb": True,
    }


def test_teardown_waits_for_each_group_to_be_gone_before_the_next(harness: Harness) -> None:
    h = harness
    h.set_blueprint(blueprint_children())
    gw = h.create_gateway(finalizer=True)
    uid = gw["metadata"]["uid"]
    assert provision(h, gw).status is OperationStatus.SUCCEEDED
    lb_name = f"{h.namespace}-edge-lb"
    # the load balancer's controller holds it while it deletes the cloud resources
    h.kube.patch(LB_API, "LB", lb_name, None, {"metadata": {"finalizers": ["test/cloud"]}},
                 field_manager="test")
    start = mark(h)
    op = h.start_teardown(gw)
    runner = h.runner()
    deadline = time.monotonic() + 10
    while True:
        runner.run_once()
        waits = [j.message or "" for j in h.store.journal(operation_id=op.id)
                 if j.outcome.value == "wait"]
        if waits:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert waits[-1] == "waiting for lb to be deleted"
    # the group after the LB (certificate, ConfigMap) is untouched while the LB is still there
    assert [w for w in child_writes(h, start) if w[0] == "delete"] == [
        ("delete", "gateways", "edge-child"), ("delete", "lbs", lb_name)]
    assert live(h, "cert", uid) and live(h, "config", uid)
    h.kube.patch(LB_API, "LB", lb_name, None,
                 [{"op": "remove", "path": "/metadata/finalizers"}], patch_type="json")
    final = h.drive(op.id)
    assert final.status is OperationStatus.SUCCEEDED, final.last_error
    deletes = [(r, n) for verb, r, n in child_writes(h, start) if verb == "delete"]
    assert deletes == [("gateways", "edge-child"), ("lbs", lb_name),
                       ("certificates", "edge-cert"), ("configmaps", "edge-config")]
    assert h.store.list_children(uid) == []


class _ConfigWaiting:
    """A provision of one ConfigMap child that is ready only once annotated
    ``example.com/ready`` (by the test), driven by one runner on ``clock``."""

    def __init__(self, h: Harness, clock: ManualClock | None = None) -> None:
        children = [c for c in blueprint_children() if c["id"] == "config"]
        children[0]["readyWhen"] = 'has(object.metadata.annotations) && ' \
            '"example.com/ready" in object.metadata.annotations'
        h.set_blueprint(children)
        self.h, self.clock = h, clock
        self.gateway = h.create_gateway()
        self.uid = self.gateway["metadata"]["uid"]
        self.op = h.start_provision(self.gateway)
        self.runner = h.runner(clock=clock) if clock is not None else h.runner()

    def waits(self) -> list[str]:
        return [j.message or "" for j in self.h.store.journal(operation_id=self.op.id)
                if j.step == "wait_ready" and j.outcome.value == "wait"]

    def run_until(self, done: Any, what: str) -> None:
        deadline = time.monotonic() + 10
        while not done():
            assert time.monotonic() < deadline, f"{what}: {self.waits()[-3:]}"
            if self.clock is not None:
                self.clock.advance(0.2)  # the waiting step's recheck, on the operation's clock
            self.runner.run_once()
            time.sleep(0.02)  # poll: the waiting step is due again after its recheck

    def delete_config(self) -> str:
        [obj] = live(self.h, "config", self.uid)
        self.h.kube.delete("v1", "ConfigMap", obj["metadata"]["name"], self.h.namespace)
        return str(obj["metadata"]["uid"])


def test_wait_ready_re_creates_a_child_deleted_while_it_waits(harness: Harness) -> None:
    """A child deleted after ``apply_children`` read it (by hand, or before the watch cache saw
    the deletion) cannot become ready by waiting: ``wait_ready`` applies it again, once, and
    waits for the new object."""
    h = harness
    p = _ConfigWaiting(h)
    p.run_until(p.waits, "wait_ready waiting")
    first = p.delete_config()
    p.run_until(lambda: any(m.startswith("re-created config;") for m in p.waits()),
                "the deleted child re-created")
    [second] = live(h, "config", p.uid)
    assert second["metadata"]["uid"] != first
    [record] = h.store.list_children(p.uid)
    assert record.uid == second["metadata"]["uid"]
    assert h.store.get_operation(p.op.id).state == "wait_ready"

    h.kube.patch("v1", "ConfigMap", second["metadata"]["name"], h.namespace,
                 {"metadata": {"annotations": {"example.com/ready": "yes"}}})
    done = h.drive(p.op.id)
    assert done.status is OperationStatus.SUCCEEDED, done.last_error
    assert [w for w in child_writes(h) if w[1] == "configmaps"] == [
        ("apply", "configmaps", "edge-config"), ("delete", "configmaps", "edge-config"),
        ("apply", "configmaps", "edge-config"), ("patch", "configmaps", "edge-config")]


def test_a_child_deleted_again_and_again_is_re_applied_with_growing_pauses(
        harness: Harness) -> None:
    """Something that keeps deleting a child (another controller) is not fought in a tight
    loop: after the first re-apply, the next waits 1 s, then 2 s … (the operation's clock)."""
    h = harness
    p = _ConfigWaiting(h, ManualClock(SystemClock().now()))
    p.run_until(p.waits, "wait_ready waiting")
    first = p.delete_config()
    p.run_until(lambda: any(m.startswith("re-created config;") for m in p.waits()),
                "re-created once")
    second = p.delete_config()
    p.run_until(lambda: "after a pause of 1s" in p.waits()[-1], "paused")
    assert p.waits()[-1] == ("children not ready: config (missing); gone again after 1 "
                             "re-apply(s) in this operation (something deletes it): re-applied "
                             "after a pause of 1s")
    assert live(h, "config", p.uid) == []  # not yet: the pause is on the operation's clock
    p.run_until(lambda: len([m for m in p.waits() if m.startswith("re-created config;")]) == 2,
                "re-created after the pause")
    [third] = live(h, "config", p.uid)
    assert len({first, second, third["metadata"]["uid"]}) == 3
    context = h.store.get_operation(p.op.id).context or {}
    assert context["recreations"] == 2
