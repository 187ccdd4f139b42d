"""The controller's cache never holds Secret data from the watch: Secrets are kept as metadata;
a Secret's data is read by name when a reconcile asks for it, remembered until the watch reports
another resourceVersion, and forgotten when it is deleted."""

from __future__ import annotations

from typing import Any

from bifrost.controller.informers import Cache
from bifrost.kube.client import LAST_APPLIED, metadata_view


def secret(name: str, rv: str, value: str = "c2VjcmV0") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "apps", "resourceVersion": rv,
                         "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: '{"data":{"tls.key":"..."}}', "x": "y"}},
            "data": {"tls.key": value}}


class Server:
    """The API server's Secrets, read by name (counts the reads)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads: list[tuple[str, str]] = []

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        return self.objects.get((namespace, name))


def test_metadata_view_drops_data_managed_fields_and_last_applied() -> None:
    view = metadata_view(secret("s", "1"))
    assert view == {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                    "metadata": {"name": "s", "namespace": "apps", "resourceVersion": "1",
                                 "labels": {"a": "b"}, "annotations": {"x": "y"}}}


def test_watch_events_are_cached_as_metadata_and_data_is_read_by_name_once() -> None:
    server = Server()
    cache = Cache(secret_reader=server.read)
    server.objects[("apps", "s")] = secret("s", "1")
    cache.apply("Secret", "ADDED", secret("s", "1"))
    cache.apply("Secret", "ADDED", secret("other", "1"))
    assert all("data" not in o for o in cache.objects("Secret"))
    assert cache.secrets_read() == 0 and server.reads == []

    got = cache.get("Secret", "apps", "s")
    assert got is not None and got["data"] == {"tls.key": "c2VjcmV0"}
    assert cache.get("Secret", "apps", "s") is got  # remembered: one read
    assert server.reads == [("apps", "s")] and cache.secrets_read() == 1

    # a new version from the watch: forgotten, read again on the next get
    server.objects[("apps", "s")] = secret("s", "2", "bmV3")
    cache.apply("Secret", "MODIFIED", secret("s", "2", "bmV3"))
    assert cache.secrets_read() == 0
    assert (cache.get("Secret", "apps", "s") or {})["data"] == {"tls.key": "bmV3"}
    assert server.reads == [("apps", "s")] * 2

    # deleted: forgotten and gone
    cache.apply("Secret", "DELETED", secret("s", "2"))
    assert cache.secrets_read() == 0 and cache.get("Secret", "apps", "s") is None
    assert server.reads == [("apps", "s")] * 2  # a Secret the watch does not know is not read


def test_a_secret_gone_on_the_server_is_none() -> None:
    server = Server()
    cache = Cache(secret_reader=server.read)
    cache.apply("Secret", "ADDED", secret("s", "1"))
    assert cache.get("Secret", "apps", "s") is None
    assert cache.secrets_read() == 0


def test_without_a_reader_the_cache_answers_metadata_only() -> None:
    cache = Cache()
    cache.apply("Secret", "ADDED", secret("s", "1"))
    got = cache.get("Secret", "apps", "s")
    assert got is not None and "data" not in got and got["metadata"]["resourceVersion"] == "1"
