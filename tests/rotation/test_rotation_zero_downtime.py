"""A rotation on the devcluster, measured with real TLS handshakes.

While bifrost replaces a listener's certificate (new → issued → attached beside the old →
verified → drained → old detached → old deleted), a client handshakes with SNI for every
hostname every 20 ms, verifying chain, name and validity. It must see no failure, and it must
see both the old and the new leaf (proof that it sampled across the swap)."""

from __future__ import annotations

from rotation_kit import Env, example_blueprint, https_gateway
from support.builders import gateway_class
from support.waiting import wait_for


def test_rotation_swaps_certificates_with_zero_failed_handshakes(env: Env) -> None:
    ns = env.namespace
    env.kube.apply(example_blueprint(f"bp-{ns}", drainSeconds=1))
    env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    hostnames = ("a.example.com", "b.example.com")
    env.kube.apply(https_gateway(ns, "edge", f"gc-{ns}", hostnames))
    gateway = env.programmed("edge")
    uid = gateway["metadata"]["uid"]
    (old,) = env.attached(uid, "https-0")
    (other,) = env.attached(uid, "https-1")
    assert old.renewal_at is not None and old.not_after is not None

    with env.handshakes("edge", hostnames, old) as loop:
        op = env.start_rotation(old)
        done = env.finished(op.id)
        report = loop.report()
    print(f"\nrotation: {report.handshakes} handshakes, {report.failures} failures, "
          f"longest gap {report.longest_gap * 1000:.1f} ms, leaves {dict(report.fingerprints)}")
    assert done.status.value == "succeeded", done.last_error
    assert report.failures == 0, report.errors
    (new,) = env.attached(uid, "https-0")
    assert new.object_name != old.object_name
    assert set(report.fingerprints) >= {old.fingerprint_sha256, new.fingerprint_sha256}
    # the other listener's certificate was not touched
    assert env.attached(uid, "https-1") == [other]
    # exactly the two current certificates remain, the old one and its Secret are gone
    names = sorted(o["metadata"]["name"] for o in env.certificate_objects(uid))
    assert names == sorted([new.object_name, other.object_name])
    assert old.secret_name and not env.secret_exists(old.secret_name)
    assert {c.object_name for c in env.certificates(uid)} == {new.object_name, other.object_name}
    # the journal shows every step once, in order
    steps = [j.step for j in env.store.journal(operation_id=op.id)
             if j.outcome.value == "done" and j.step]
    assert steps == ["create_certificate", "await_issued", "attach_new", "verify_served",
                     "drain", "detach_old", "delete_old"]
    # every child is recorded ready again (what Programmed is judged on)
    assert [c.child_id for c in env.store.list_children(uid) if not c.ready] == []
    # the Gateway stayed Programmed and its listener refers to the new certificate's Secret
    gateway = env.programmed("edge")
    child = env.child_gateway("edge")
    refs = [r["name"] for r in child["spec"]["listeners"][0]["tls"]["certificateRefs"]]
    assert refs == [new.secret_name]

    # deleting the Gateway removes the certificates last, then their Secrets: nothing leaks
    env.kube.delete("gateway.networking.k8s.io/v1", "Gateway", "edge", ns)
    wait_for(lambda: env.gateway("edge") is None, timeout=60, what="the Gateway to be gone")
    assert env.certificate_objects(uid) == []
    for record in (new, other):
        assert record.secret_name and not env.secret_exists(record.secret_name)
