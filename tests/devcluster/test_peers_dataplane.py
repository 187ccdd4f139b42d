"""The TLS data plane serves, by SNI, exactly the attached certificates, over real handshakes.

These tests drive the data plane directly (attachments and Secrets as the load balancer and the
Secret watch would feed them); ``test_peers_cluster.py`` drives it through the API server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from peers_support import HandshakeFailed, handshake, tls_secret
from support.waiting import wait_for

from devcluster.peers.ca import LocalCA
from devcluster.peers.dataplane import CertRef, ChildRef, DataPlane, hostname_matches

CHILD = ChildRef("gateway.networking.k8s.io/v1", "Gateway", "apps", "child")


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.generate()


@pytest.fixture
def plane() -> Iterator[DataPlane]:
    dp = DataPlane()
    yield dp
    dp.stop()


def test_serves_the_attached_certificate_for_its_names(ca: LocalCA, plane: DataPlane) -> None:
    app = ca.issue(["app.example.com", "www.example.com"])
    port = plane.set_child(CHILD, [CertRef("apps", "app-tls")])
    plane.secret_changed(tls_secret("apps", "app-tls", app))
    assert handshake(port, "app.example.com", ca.cert_pem) == app.fingerprint_sha256
    assert handshake(port, "WWW.example.com", ca.cert_pem) == app.fingerprint_sha256
    [served] = plane.served(CHILD)
    assert served.fingerprint_sha256 == app.fingerprint_sha256


def test_unknown_sni_and_missing_sni_fail_the_handshake(ca: LocalCA, plane: DataPlane) -> None:
    app = ca.issue(["app.example.com"])
    port = plane.set_child(CHILD, [CertRef("apps", "app-tls")])
    plane.secret_changed(tls_secret("apps", "app-tls", app))
    with pytest.raises(HandshakeFailed, match="UNRECOGNIZED_NAME"):
        handshake(port, "other.example.com", ca.cert_pem, verify=False)
    with pytest.raises(HandshakeFailed, match="UNRECOGNIZED_NAME"):
        handshake(port, None, ca.cert_pem, verify=False)


def test_nothing_is_served_until_the_secret_exists(ca: LocalCA, plane: DataPlane) -> None:
    port = plane.set_child(CHILD, [CertRef("apps", "later")])
    with pytest.raises(HandshakeFailed):
        handshake(port, "later.example.com", ca.cert_pem)
    assert plane.ref_problem("apps", "later") == "Secret apps/later does not exist"
    later = ca.issue(["later.example.com"])
    plane.secret_changed(tls_secret("apps", "later", later))
    assert handshake(port, "later.example.com", ca.cert_pem) == later.fingerprint_sha256
    assert plane.ref_problem("apps", "later") is None


def test_unattached_secrets_are_not_served(ca: LocalCA, plane: DataPlane) -> None:
    attached = ca.issue(["a.example.com"])
    stray = ca.issue(["b.example.com"])
    port = plane.set_child(CHILD, [CertRef("apps", "a")])
    plane.secret_changed(tls_secret("apps", "a", attached))
    plane.secret_changed(tls_secret("apps", "b", stray))
    with pytest.raises(HandshakeFailed):
        handshake(port, "b.example.com", ca.cert_pem)


def test_wildcards_cover_one_label_and_exact_names_win(ca: LocalCA, plane: DataPlane) -> None:
    wildcard = ca.issue(["*.example.com"])
    exact = ca.issue(["api.example.com"])
    port = plane.set_child(CHILD, [CertRef("apps", "wild"), CertRef("apps", "exact")])
    plane.secret_changed(tls_secret("apps", "exact", exact))
    plane.secret_changed(tls_secret("apps", "wild", wildcard))
    assert handshake(port, "api.example.com", ca.cert_pem) == exact.fingerprint_sha256
    assert handshake(port, "shop.example.com", ca.cert_pem) == wildcard.fingerprint_sha256
    with pytest.raises(HandshakeFailed):
        handshake(port, "a.b.example.com", ca.cert_pem, verify=False)
    with pytest.raises(HandshakeFailed):
        handshake(port, "example.com", ca.cert_pem, verify=False)


def test_listener_hostname_restricts_what_a_certificate_serves(
    ca: LocalCA, plane: DataPlane
) -> None:
    both = ca.issue(["a.example.com", "b.example.com"])
    port = plane.set_child(CHILD, [CertRef("apps", "both", listener_hostname="a.example.com")])
    plane.secret_changed(tls_secret("apps", "both", both))
    assert handshake(port, "a.example.com", ca.cert_pem) == both.fingerprint_sha256
    with pytest.raises(HandshakeFailed):
        handshake(port, "b.example.com", ca.cert_pem, verify=False)


def test_newest_certificate_wins_while_old_and_new_are_attached(
    ca: LocalCA, plane: DataPlane
) -> None:
    now = datetime.now(UTC)
    old = ca.issue(["r.example.com"], not_before=now - timedelta(minutes=5))
    new = ca.issue(["r.example.com"], not_before=now - timedelta(minutes=1))
    port = plane.set_child(CHILD, [CertRef("apps", "old")])
    plane.secret_changed(tls_secret("apps", "old", old))
    plane.secret_changed(tls_secret("apps", "new", new))
    assert handshake(port, "r.example.com", ca.cert_pem) == old.fingerprint_sha256
    plane.set_child(CHILD, [CertRef("apps", "old"), CertRef("apps", "new")])
    assert handshake(port, "r.example.com", ca.cert_pem) == new.fingerprint_sha256
    plane.set_child(CHILD, [CertRef("apps", "new")])
    assert handshake(port, "r.example.com", ca.cert_pem) == new.fingerprint_sha256
    plane.set_child(CHILD, [])
    with pytest.raises(HandshakeFailed):
        handshake(port, "r.example.com", ca.cert_pem, verify=False)


def test_secret_update_swaps_the_served_certificate(ca: LocalCA, plane: DataPlane) -> None:
    first = ca.issue(["s.example.com"])
    second = ca.issue(["s.example.com"])
    changed: list[set[ChildRef]] = []
    plane.subscribe(changed.append)
    port = plane.set_child(CHILD, [CertRef("apps", "s")])
    plane.secret_changed(tls_secret("apps", "s", first, rv="10"))
    assert handshake(port, "s.example.com", ca.cert_pem) == first.fingerprint_sha256
    t0 = time.monotonic()
    plane.secret_changed(tls_secret("apps", "s", second, rv="11"))
    wait_for(
        lambda: handshake(port, "s.example.com", ca.cert_pem) == second.fingerprint_sha256,
        timeout=1.0,
        what="the re-issued certificate",
    )
    print(f"in-process secret swap latency: {(time.monotonic() - t0) * 1000:.1f} ms")
    assert changed and all(c == {CHILD} for c in changed)
    plane.secret_deleted("apps", "s")
    with pytest.raises(HandshakeFailed):
        handshake(port, "s.example.com", ca.cert_pem, verify=False)


def test_unusable_secret_is_reported_and_not_served(ca: LocalCA, plane: DataPlane) -> None:
    good = ca.issue(["u.example.com"])
    other = ca.issue(["u.example.com"])
    broken = tls_secret("apps", "u", good)
    broken["data"]["tls.key"] = tls_secret("apps", "x", other)["data"]["tls.key"]  # wrong key
    port = plane.set_child(CHILD, [CertRef("apps", "u")])
    plane.secret_changed(broken)
    problem = plane.ref_problem("apps", "u")
    assert problem is not None and "do not load" in problem
    with pytest.raises(HandshakeFailed):
        handshake(port, "u.example.com", ca.cert_pem, verify=False)


def test_each_child_has_its_own_port_and_removal_closes_it(ca: LocalCA, plane: DataPlane) -> None:
    one = ca.issue(["one.example.com"])
    other_child = CHILD._replace(name="other")
    p1 = plane.set_child(CHILD, [CertRef("apps", "one")])
    p2 = plane.set_child(other_child, [])
    assert p1 != p2
    assert plane.set_child(CHILD, [CertRef("apps", "one")]) == p1  # stable
    plane.secret_changed(tls_secret("apps", "one", one))
    assert handshake(p1, "one.example.com", ca.cert_pem) == one.fingerprint_sha256
    with pytest.raises(HandshakeFailed):
        handshake(p2, "one.example.com", ca.cert_pem, verify=False)
    plane.remove_child(CHILD)
    assert plane.port(CHILD) is None
    with pytest.raises(HandshakeFailed):
        handshake(p1, "one.example.com", ca.cert_pem, verify=False)
    assert plane.children() == {other_child: p2}


def test_a_requested_port_is_reused_when_free(ca: LocalCA) -> None:
    first = DataPlane()
    port = first.set_child(CHILD, [])
    first.stop()
    second = DataPlane()
    try:
        assert second.set_child(CHILD, [], port=port) == port
    finally:
        second.stop()


def test_hostname_matching_rules() -> None:
    assert hostname_matches("a.example.com", "A.Example.com.")
    assert hostname_matches("*.example.com", "x.example.com")
    assert not hostname_matches("*.example.com", "example.com")
    assert not hostname_matches("*.example.com", "x.y.example.com")
    assert not hostname_matches("a.example.com", "b.example.com")


def test_ties_on_not_before_go_to_the_later_attachment(ca: LocalCA, plane: DataPlane) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    first = ca.issue(["tie.example.com"], not_before=at)
    second = ca.issue(["tie.example.com"], not_before=at)
    port = plane.set_child(CHILD, [CertRef("apps", "first"), CertRef("apps", "second")])
    plane.secret_changed(tls_secret("apps", "first", first))
    plane.secret_changed(tls_secret("apps", "second", second))
    assert handshake(port, "tie.example.com", ca.cert_pem) == second.fingerprint_sha256
    plane.set_child(CHILD, [CertRef("apps", "second"), CertRef("apps", "first")])
    assert handshake(port, "tie.example.com", ca.cert_pem) == first.fingerprint_sha256
