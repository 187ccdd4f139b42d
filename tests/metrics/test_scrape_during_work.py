"""``/metrics`` scraped over HTTP from a running controller while it provisions a Gateway and
rotates its certificate (once successfully, once failing): every family the issue lists is
there, parses, and moves the way the work says it should."""

from __future__ import annotations

import threading

import pytest
from rotation.rotation_kit import Env, example_blueprint, https_gateway
from scrape_kit import Scrape, alert_rules, promql_metric_names, scrape
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.controller.health import HealthServer

pytestmark = pytest.mark.slow

#: Only these families may carry per-Gateway labels (bounded cardinality).
PER_GATEWAY = {"bifrost_certificate_not_after_timestamp_seconds",
               "bifrost_certificate_renewal_timestamp_seconds"}


class Scraper:
    """Scrapes in the background while the test drives the work, so scrapes happen *during*
    it; remembers the most in-flight operations each machine showed and any scrape error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.errors: list[str] = []
        self.count = 0
        self.in_flight: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                s = scrape(self.port)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
                continue
            self.count += 1
            for (name, labels), value in s.samples.items():
                if name == "bifrost_engine_operations" and \
                        dict(labels)["status"] in ("pending", "running", "waiting"):
                    machine = dict(labels)["machine"]
                    self.in_flight[machine] = max(self.in_flight.get(machine, 0.0), value)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_families_move_during_provision_and_rotations(env: Env) -> None:
    assert env.controller is not None
    ns = env.namespace
    server = HealthServer(env.controller, "127.0.0.1", 0, health=False)
    server.start()
    try:
        wait_for(lambda: scrape(server.port).value(
            "leader_election_master_status", name="bifrost-controller") == 1.0,
            timeout=30, what="the controller to lead")
        before = scrape(server.port)
        # the process and runtime collectors are on bifrost's own registry
        assert before.value("process_cpu_seconds_total") > 0
        assert "python_gc_objects_collected" in before.types
        assert before.label_values("python_info", "implementation")

        with Scraper(server.port) as scraper:
            env.kube.apply(example_blueprint(f"bp-{ns}", drainSeconds=0, issueTimeoutSeconds=4))
            env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
            env.kube.apply(https_gateway(ns, "metered", f"gc-{ns}", ("m.example.com",)))
            uid = env.programmed("metered")["metadata"]["uid"]
            wait_for(lambda: scrape(server.port).value(
                "bifrost_operations_total", machine="provision", result="succeeded") == 1.0,
                timeout=30, what="the provision to be counted")
            provisioned = scrape(server.port)
            (cert,) = env.attached(uid, "https-0")

            done = env.finished(env.start_rotation(cert).id)
            assert done.status.value == "succeeded", done.last_error
            (new,) = env.attached(uid, "https-0")
            wait_for(lambda: scrape(server.port).value(
                "bifrost_certificate_rotations_total", result="succeeded") == 1.0,
                timeout=30, what="the rotation to be counted")

            # a rotation whose certificate is never issued: waits, then fails (rolls back)
            last = max((o for o in env.store.list_operations(gateway_uid=uid)
                        if o.machine == "provision"), key=lambda o: o.id).context or {}
            values = {**last["values"], "issuer": "nowhere-ca"}
            op = env.start_rotation(new, namespace=ns, gateway="metered",
                                    blueprint=last["blueprint"], values=values)
            wait_for(lambda: scrape(server.port).value(
                "bifrost_engine_operations", machine="rotate_certificate",
                status="waiting") == 1.0, timeout=15, what="the waiting rotation to show")
            age = scrape(server.port).value("bifrost_engine_operation_oldest_age_seconds",
                                            machine="rotate_certificate")
            assert age >= 0.0
            failed = env.finished(op.id)
            assert failed.status.value == "failed", failed.state
            wait_for(lambda: scrape(server.port).value(
                "bifrost_certificate_rotations_total", result="failed") == 1.0,
                timeout=30, what="the failed rotation to be counted")
        after = scrape(server.port)
    finally:
        server.stop()

    assert not scraper.errors, scraper.errors[:3]
    assert scraper.count > 10
    assert scraper.in_flight.get("provision", 0) >= 1 or scraper.in_flight.get(
        "rotate_certificate", 0) >= 1, scraper.in_flight

    # --- the controller-runtime set moved -------------------------------------------------
    assert after.value("workqueue_adds_total", name="bifrost") > \
        before.value("workqueue_adds_total", name="bifrost")
    assert after.value("workqueue_work_duration_seconds_count", name="bifrost") > 0
    assert after.value("workqueue_queue_duration_seconds_count", name="bifrost") > 0
    assert ("workqueue_depth", (("name", "bifrost"),)) in after.samples
    assert ("workqueue_retries_total", (("name", "bifrost"),)) in after.samples
    assert after.value("controller_runtime_reconcile_total", controller="Gateway",
                       result="success") > before.value(
        "controller_runtime_reconcile_total", controller="Gateway", result="success")
    assert after.value("controller_runtime_reconcile_time_seconds_count",
                       controller="Gateway") > 0
    assert {"Gateway", "GatewayClass"} <= after.label_values(
        "controller_runtime_reconcile_total", "controller")
    assert after.value("bifrost_informer_cache_objects", informer="main", kind="Gateway") >= 1
    assert after.value("bifrost_informer_watches_total", informer="main", kind="Gateway") >= 1
    assert ("bifrost_informer_watch_restarts_total",
            (("informer", "main"), ("kind", "Gateway"), ("reason", "relist"))) in after.samples
    # the provision's children are watched by the children's informers
    assert after.label_values("bifrost_informer_cache_objects", "informer") >= {"main",
                                                                                "children"}

    # --- the API client -------------------------------------------------------------------
    assert after.total("bifrost_kube_api_requests_total", verb="patch") > \
        provisioned.total("bifrost_kube_api_requests_total", verb="patch") > 0
    assert after.total("bifrost_kube_api_requests_total", verb="watch", code="200") > 0
    assert after.total("bifrost_kube_api_request_duration_seconds_count", verb="list") > 0
    resources = after.label_values("bifrost_kube_api_requests_total", "resource")
    assert {"gateways", "certificates"} <= resources, resources
    assert not any(ns in r or "metered" in r for r in resources)

    # --- the engine -----------------------------------------------------------------------
    assert provisioned.total("bifrost_engine_step_duration_seconds_count", machine="provision",
                             outcome="done") >= 1
    assert after.total("bifrost_engine_step_duration_seconds_count",
                       machine="rotate_certificate", step="verify_served", outcome="done") >= 1
    assert after.total("bifrost_engine_step_duration_seconds_count",
                       machine="rotate_certificate", outcome="wait") >= 1
    assert after.value("bifrost_engine_claim_duration_seconds_count") > 0
    assert after.value("bifrost_engine_claimed_operations_total") >= 3
    assert after.value("bifrost_engine_journal_rows_total", outcome="started") > \
        provisioned.value("bifrost_engine_journal_rows_total", outcome="started") > 0
    assert after.value("bifrost_engine_journal_rows_total", outcome="done") > 0
    assert after.value("bifrost_engine_journal_rows_total", outcome="failed") >= 1
    assert "bifrost_engine_lease_losses" in after.types
    # nothing left in flight; the failed rotation was compensated to rolled_back (failed)
    assert after.total("bifrost_engine_operations", status="running") == 0
    assert after.value("bifrost_engine_operations", machine="rotate_certificate",
                       status="failed") == 1

    # --- certificates ---------------------------------------------------------------------
    assert after.value("bifrost_certificate_rotations_total", result="succeeded") == 1
    assert after.value("bifrost_certificate_rotations_total", result="failed") == 1
    assert after.value("bifrost_certificate_verifications_total", result="verified") >= 1
    labels = {"namespace": ns, "gateway": "metered", "listener": "https-0",
              "certificate": new.object_name}
    assert new.not_after is not None
    assert after.value("bifrost_certificate_not_after_timestamp_seconds", **labels) == \
        new.not_after.timestamp()
    assert "bifrost_drift_repairs" in after.types

    # --- bounded labels: only the certificate gauges name a Gateway ----------------------
    for name, label_set in after.samples:
        keys = {k for k, _ in label_set}
        if name not in PER_GATEWAY:
            assert not keys & {"gateway", "namespace", "certificate", "operation"}, name

    # --- every metric the alerts use exists in this scrape --------------------------------
    known = after.names()
    for rule in alert_rules():
        used = promql_metric_names(str(rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, (rule["alert"], used - known)


def test_scrape_types_are_what_the_names_say(env: Env) -> None:
    """Counters end in _total, durations in _seconds (Prometheus naming conventions)."""
    assert env.controller is not None
    server = HealthServer(env.controller, "127.0.0.1", 0, health=False)
    server.start()
    try:
        s: Scrape = scrape(server.port)
    finally:
        server.stop()
    for family, kind in s.types.items():
        if family.startswith(("bifrost_", "workqueue_", "controller_runtime_")):
            if kind == "histogram":
                assert family.endswith("_seconds"), family
            if kind == "counter":
                assert f"{family}_total" in s.names(), family
