"""``/metrics``: certificate expiry and renewal times from the store, rotations by result."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from rotation_kit import Env, example_blueprint, https_gateway
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.controller.manager import HealthServer


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_show_certificate_expiry_and_rotations(env: Env) -> None:
    assert env.controller is not None
    ns = env.namespace
    env.kube.apply(example_blueprint(f"bp-{ns}", drainSeconds=0))
    env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    env.kube.apply(https_gateway(ns, "metered", f"gc-{ns}", ("m.example.com",)))
    uid = env.programmed("metered")["metadata"]["uid"]
    (cert,) = env.attached(uid, "https-0")
    assert cert.not_after is not None and cert.renewal_at is not None

    def labels(name: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({"namespace": ns, "gateway": "metered", "listener": "https-0",
                             "certificate": name}.items()))

    server = HealthServer(env.controller, "127.0.0.1", 0)
    server.start()
    try:
        samples = _scrape(server.port)
        key = labels(cert.object_name)
        assert samples[("bifrost_certificate_not_after_timestamp_seconds", key)] == \
            cert.not_after.timestamp()
        assert samples[("bifrost_certificate_renewal_timestamp_seconds", key)] == \
            cert.renewal_at.timestamp()

        done = env.finished(env.start_rotation(cert).id)
        assert done.status.value == "succeeded", done.last_error
        rotated = ("bifrost_certificate_rotations_total", (("result", "succeeded"),))
        wait_for(lambda: _scrape(server.port).get(rotated) == 1.0, timeout=30,
                 what="the rotation to be counted")
        (new,) = env.attached(uid, "https-0")
        samples = _scrape(server.port)
        assert ("bifrost_certificate_not_after_timestamp_seconds",
                labels(new.object_name)) in samples
        assert ("bifrost_certificate_not_after_timestamp_seconds",
                labels(cert.object_name)) not in samples
    finally:
        server.stop()
