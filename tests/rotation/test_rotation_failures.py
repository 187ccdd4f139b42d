"""Rotations that cannot finish roll back to the old certificate, which never stops being
served; and the triggers that start rotations without an operator (hostnames changed, renewal
time reached — also when it passed while no controller ran)."""

from __future__ import annotations

from datetime import timedelta

from rotation_kit import Env, condition, example_blueprint, https_gateway, running_controller
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.clock import SystemClock
from bifrost.machines.rotation import REASON_HOSTNAMES_CHANGED, REASON_RENEWAL_DUE


def _setup(env: Env, name: str, hostnames: tuple[str, ...] = ("a.example.com",),
           **tls: object) -> str:
    ns = env.namespace
    env.kube.apply(example_blueprint(f"bp-{ns}-{name}", drainSeconds=0, **tls))
    env.kube.apply(gateway_class(f"gc-{ns}-{name}", f"bp-{ns}-{name}"))
    env.kube.apply(https_gateway(ns, name, f"gc-{ns}-{name}", hostnames))
    return str(env.programmed(name)["metadata"]["uid"])


def _last_provision_values(env: Env, uid: str) -> dict[str, object]:
    provision = max((o for o in env.store.list_operations(gateway_uid=uid)
                     if o.machine == "provision"), key=lambda o: o.id)
    return dict(provision.context)


def test_issuer_never_issues_rolls_back_and_keeps_the_old_certificate(env: Env) -> None:
    uid = _setup(env, "noissue", issueTimeoutSeconds=2)
    (old,) = env.attached(uid, "https-0")
    last = _last_provision_values(env, uid)
    values = {**last["values"], "issuer": "nowhere-ca"}  # type: ignore[dict-item]
    with env.handshakes("noissue", ("a.example.com",), old) as loop:
        op = env.start_rotation(old, namespace=env.namespace, gateway="noissue",
                                blueprint=last["blueprint"], values=values)
        done = env.finished(op.id)
    report = loop.report()
    assert (done.status.value, done.state) == ("failed", "rolled_back")
    assert "not issued within 2s" in (done.last_error or "")
    assert report.failures == 0 and report.handshakes > 0, report.errors
    assert set(report.fingerprints) == {old.fingerprint_sha256}
    assert env.attached(uid, "https-0") == [old]
    # the requested certificate is gone again; only the old one is left
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [old.object_name]
    assert [c.object_name for c in env.certificates(uid)] == [old.object_name]

    def says_why() -> dict[str, object] | None:
        c = condition(env.gateway("noissue"), "gateway.bifrost.dev/Operation")
        return c if c and c["reason"] == "Failed" else None

    cond = wait_for(says_why, timeout=15, what="the Operation condition to say Failed")
    assert "not issued within 2s" in str(cond["message"])
    assert condition(env.gateway("noissue"), "Programmed")["status"] == "True"  # type: ignore[index]

    def warning_event() -> list[dict[str, object]]:
        items, _ = env.kube.list("events.k8s.io/v1", "Event", env.namespace)
        return [e for e in items if e.get("reason") == "RotateCertificateFailed"
                and (e.get("regarding") or {}).get("name") == "noissue"]

    (event,) = wait_for(warning_event, timeout=15, what="a RotateCertificateFailed Event")
    assert event["type"] == "Warning" and "not issued within 2s" in str(event["note"])


def test_verification_that_never_succeeds_rolls_back_without_detaching(env: Env) -> None:
    uid = _setup(env, "noverify", verify={
        "mode": "tlsProbe", "timeoutSeconds": 2,
        # a port nothing listens on: the new certificate is never seen served
        "endpoint": '{"host": "127.0.0.1", "port": 9}'})
    (old,) = env.attached(uid, "https-0")
    with env.handshakes("noverify", ("a.example.com",), old) as loop:
        op = env.start_rotation(old)
        done = env.finished(op.id)
    report = loop.report()
    assert (done.status.value, done.state) == ("failed", "rolled_back")
    assert "not verified as served within 2s" in (done.last_error or "")
    steps = [j.step for j in env.store.journal(operation_id=op.id)
             if j.outcome.value == "done" and j.step]
    assert "detach_old" not in steps and "delete_old" not in steps
    assert steps[-2:] == ["detach_new", "delete_new"]
    assert report.failures == 0, report.errors
    assert env.attached(uid, "https-0") == [old]
    refs = [r["name"] for r in
            env.child_gateway("noverify")["spec"]["listeners"][0]["tls"]["certificateRefs"]]
    assert refs == [old.secret_name]
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [old.object_name]


def test_changed_listener_hostname_rotates_to_a_covering_certificate(env: Env) -> None:
    uid = _setup(env, "rename", ("old.example.com",))
    (old,) = env.attached(uid, "https-0")
    env.kube.apply(https_gateway(env.namespace, "rename", f"gc-{env.namespace}-rename",
                                 ("new.example.com",)))

    def rotated() -> list[object]:
        return [o for o in env.rotations(uid) if o.status.value == "succeeded"]

    (op,) = wait_for(rotated, timeout=60, what="a rotation for the new hostname")
    assert op.context["reason"] == REASON_HOSTNAMES_CHANGED
    (new,) = env.attached(uid, "https-0")
    assert new.dns_names == ("new.example.com",)
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [new.object_name]
    # the child serves the new hostname with the new certificate. The provision that follows
    # the changed Gateway writes the child's hostname; the load balancer peer hands it to the
    # data plane on its own watch, then reports it in the child's status with that generation:
    # only then does the data plane select by the new hostname.
    def child_followed() -> bool:
        child = env.child_gateway("rename")
        generation = child["metadata"].get("generation")
        conditions = (child.get("status") or {}).get("conditions") or []
        return (child["spec"]["listeners"][0]["hostname"] == "new.example.com"
                and bool(conditions)
                and all(c.get("observedGeneration") == generation for c in conditions))

    wait_for(child_followed, timeout=30,
             what="the child to follow the hostname, observed by the load balancer")
    loop = env.handshakes("rename", ("new.example.com",), new)
    assert loop.handshake(loop.targets[0]) == new.fingerprint_sha256


def test_renewal_missed_while_no_controller_ran_starts_at_once(env: Env) -> None:
    uid = _setup(env, "missed")
    (old,) = env.attached(uid, "https-0")
    # As if the renewal time passed during a downtime: the store says it is overdue.
    past = SystemClock().now() - timedelta(hours=1)
    env.store.upsert_certificate(old.model_copy(update={"renewal_at": past}))
    # a second controller instance on the same store (the env's one keeps leading; the
    # schedule of a new leader is rebuilt from the store the same way) - here: the leader's poll
    (op,) = wait_for(lambda: env.rotations(uid), timeout=30, what="a renewal rotation")
    assert op.context["reason"] == REASON_RENEWAL_DUE
    done = env.finished(op.id)
    assert done.status.value == "succeeded", done.last_error
    (new,) = env.attached(uid, "https-0")
    assert new.object_name != old.object_name
    assert new.renewal_at is not None and new.renewal_at > SystemClock().now()
    assert running_controller  # the kit's controller is what ran it


def test_first_certificate_not_issued_fails_provision_then_the_retry_reuses_it(env: Env) -> None:
    ns = env.namespace
    blueprint = example_blueprint(f"bp-{ns}-first", issueTimeoutSeconds=1)
    blueprint["spec"]["defaults"]["issuer"] = "nowhere-ca"
    env.kube.apply(blueprint)
    env.kube.apply(gateway_class(f"gc-{ns}-first", f"bp-{ns}-first"))
    env.kube.apply(https_gateway(ns, "first", f"gc-{ns}-first", ("f.example.com",)))

    def failed_provision() -> list[object]:
        gw = env.gateway("first")
        uid = (gw or {}).get("metadata", {}).get("uid")
        return [o for o in env.store.list_operations(gateway_uid=uid)
                if o.machine == "provision" and o.status.value == "failed"] if uid else []

    (op,) = wait_for(failed_provision, timeout=30, what="the provision to give up")
    assert "not issued within 1s" in (op.last_error or "")  # type: ignore[attr-defined]
    uid = env.gateway("first")["metadata"]["uid"]  # type: ignore[index]
    assert len(env.certificate_objects(uid)) == 1
    # the platform team fixes the issuer: the next provision issues the same certificate
    blueprint["spec"]["defaults"]["issuer"] = "devcluster-ca"
    env.kube.apply(blueprint)
    env.programmed("first")
    (cert,) = env.attached(uid, "https-0")
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [cert.object_name]
