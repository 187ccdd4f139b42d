"""The admin API's gate without a cluster: what it asks the cluster (the reviews it creates),
and that it never answers a request it could not check — no token, a failed review, a review
that says ``denied`` — nor writes the token into a log line. The reviewer here is a recording
stand-in for the API server (the seam ``Gatekeeper`` takes)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from support.admin_fleet import Fleet

from bifrost.admin.server import AdminApi, Gatekeeper
from bifrost.kube.errors import KubeError

TOKEN = "s3cret-token-value"
USER = {"username": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a"]}}


class Cluster:
    """Answers TokenReviews for TOKEN and SubjectAccessReviews from ``allowed`` verbs."""

    def __init__(self, allowed: set[str], *, fail: bool = False,
                 status: dict[str, Any] | None = None) -> None:
        self.allowed, self.fail, self.status = allowed, fail, status
        self.reviews: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.reviews.append(obj)
        if self.fail:
            raise KubeError("connection refused")
        if obj["kind"] == "TokenReview":
            ok = obj["spec"]["token"] == TOKEN
            return {**obj, "status": {"authenticated": True, "user": USER} if ok
                    else {"error": "invalid bearer token"}}
        verb = obj["spec"]["resourceAttributes"]["verb"]
        return {**obj, "status": self.status or {"allowed": verb in self.allowed}}


def _api(fleet: Fleet, cluster: Cluster) -> AdminApi:
    return AdminApi(fleet.store, registry=fleet.registry, clock=fleet.clock,
                    gatekeeper=Gatekeeper(cluster))


def test_the_reviews_carry_the_caller_and_the_attributes(fleet: Fleet) -> None:
    fleet.gateway("apps", "web")
    cluster = Cluster({"get"})
    answer = _api(fleet, cluster).handle("GET", "/v1/gateways/apps/web/history?limit=5",
                                         f"Bearer {TOKEN}", b"")
    assert answer.status == 200 and answer.body["kind"] == "History"
    token_review, access_review = cluster.reviews
    assert token_review["spec"] == {"token": TOKEN}
    assert access_review["spec"] == {
        "user": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a"]},
        "resourceAttributes": {"verb": "get", "group": "gateway.bifrost.dev",
                               "resource": "gateways", "subresource": "operations",
                               "namespace": "apps", "name": "web"}}


@pytest.mark.parametrize(("authorization", "reviews"), [
    (None, 0), ("Basic abc", 0), ("Bearer ", 0), ("Bearer wrong", 1)])
def test_no_valid_token_no_answer(fleet: Fleet, authorization: str | None,
                                  reviews: int) -> None:
    fleet.gateway("apps", "web")
    cluster = Cluster({"get", "list", "update"})
    api = _api(fleet, cluster)
    for method, path in (("GET", "/v1/gateways"), ("POST", "/v1/gateways/apps/web/pause"),
                         ("GET", "/v1/no-such-thing"), ("GET", "/v1/machines/deliver/graph")):
        answer = api.handle(method, path, authorization, b"")
        assert answer.status == 401, (method, path)
        assert answer.body["kind"] == "Error" and answer.body["exit_code"] == 4
        assert answer.body["message"].startswith("401 Unauthorized: ")
    assert len(cluster.reviews) == 4 * reviews  # only TokenReviews, never an access review


def test_a_review_that_fails_is_never_allowed(fleet: Fleet) -> None:
    fleet.gateway("apps", "web")
    answer = _api(fleet, Cluster(set(), fail=True)).handle(
        "GET", "/v1/gateways", f"Bearer {TOKEN}", b"")
    assert answer.status == 503 and answer.body["exit_code"] == 1
    assert answer.body["message"] == (
        "bifrost admin API cannot ask the cluster (TokenReview): connection refused")


def test_denied_wins_and_the_reason_is_shown(fleet: Fleet) -> None:
    fleet.gateway("apps", "web")
    cluster = Cluster(set(), status={"allowed": True, "denied": True, "reason": "webhook says no"})
    answer = _api(fleet, cluster).handle("GET", "/v1/gateways?namespace=apps",
                                         f"Bearer {TOKEN}", b"")
    assert answer.status == 403
    assert answer.body["message"] == (
        '403 Forbidden: User "alice" cannot list resource "gateways/operations" in API group '
        '"gateway.bifrost.dev" in the namespace "apps": webhook says no')


def test_a_graph_without_a_gateway_needs_only_a_token(fleet: Fleet) -> None:
    cluster = Cluster(set())
    answer = _api(fleet, cluster).handle("GET", "/v1/machines/deliver/graph",
                                         f"Bearer {TOKEN}", b"")
    assert answer.status == 200 and answer.body["kind"] == "Graph"
    assert [r["kind"] for r in cluster.reviews] == ["TokenReview"]


def test_bad_requests_are_the_clis_exit_codes(fleet: Fleet) -> None:
    fleet.gateway("apps", "web")
    api = _api(fleet, Cluster({"get", "list", "update"}))
    bearer = f"Bearer {TOKEN}"
    cases = [
        ("GET", "/v1/gateways/apps/nope", b"", 404, 1),
        ("GET", "/v1/gateways/apps/web?journal=x", b"", 400, 2),
        ("GET", "/v1/gateways/Bad_NS/web", b"", 400, 2),
        ("POST", "/v1/gateways/apps/web/pause", b"[1]", 400, 2),
        ("POST", "/v1/gateways/apps/web/pause", b"", 409, 3),  # nothing to pause
        ("POST", "/v1/operations/99/retry", b"", 409, 3),
        ("GET", "/v1/operations/99", b"", 422, 1),
        ("POST", "/v1/gateways/apps/web/explode", b"", 404, 1),
    ]
    for method, path, body, status, code in cases:
        answer = api.handle(method, path, bearer, body)
        assert (answer.status, answer.body["exit_code"]) == (status, code), (path, answer.body)


def test_the_token_is_never_logged(fleet: Fleet, caplog: pytest.LogCaptureFixture) -> None:
    fleet.gateway("apps", "web")
    caplog.set_level(logging.DEBUG)
    api = _api(fleet, Cluster({"get"}))
    for authorization in (f"Bearer {TOKEN}", "Bearer wrong-" + TOKEN):
        api.handle("GET", "/v1/gateways/apps/web", authorization, b"")
        api.handle("POST", "/v1/gateways/apps/web/pause", authorization, b"{}")
    assert "admin API: GET /v1/gateways/apps/web get by alice → 200" in caplog.text
    assert "by (unauthenticated) → 401" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps([r.__dict__ for r in caplog.records], default=str)


def test_a_bug_is_a_500_line_not_a_dropped_connection(fleet: Fleet,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    broken = AdminApi(object(), registry=fleet.registry, clock=fleet.clock,  # type: ignore[arg-type]
                      gatekeeper=Gatekeeper(Cluster({"list"})))
    answer = broken.handle("GET", "/v1/gateways", f"Bearer {TOKEN}", b"")
    assert (answer.status, answer.body["exit_code"]) == (500, 1)
    assert answer.body["message"] == "the bifrost admin API failed (see the controller's log)"
    assert "admin API: GET /v1/gateways failed" in caplog.text
