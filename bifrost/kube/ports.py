"""The ports through which the rest of bifrost talks to Kubernetes: small Protocols that
:class:`~bifrost.kube.client.KubeClient` satisfies and that tests satisfy with a ``FakeKube``
(``tests/support/fake_kube.py``), so steps and the controller can be unit-tested without a
server while the devcluster stays for integration tests.

- :class:`KubeReader` reads objects (and what discovery knows about their kinds);
- :class:`KubeWriter` creates, applies, patches and deletes them;
- :class:`KubeStatusWriter` writes their ``status`` subresource;
- :class:`Kube` is all three, what a step or the observer that both reads and writes takes.

Objects cross these ports as :data:`bifrost.api.objects.Obj`; failures are the typed errors of
:mod:`bifrost.kube.errors`, each of which says whether and how to retry.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from bifrost.api.objects import Obj
from bifrost.kube.client import DEFAULT_FIELD_MANAGER, KubeClient, Patch

__all__ = ["Kube", "KubeReader", "KubeStatusWriter", "KubeWriter"]


@runtime_checkable
class KubeReader(Protocol):
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        metadata_only: bool = False,
    ) -> tuple[list[Obj], str]: ...

    def is_namespaced(self, api_version: str, kind: str) -> bool: ...

    def plural(self, api_version: str, kind: str) -> str: ...


@runtime_checkable
class KubeWriter(Protocol):
    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj: ...

    def replace(self, obj: Obj, *, field_manager: str | None = None) -> Obj: ...

    def apply(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj: ...

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Patch,
        *,
        patch_type: Literal["merge", "json", "strategic"] = "merge",
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> Obj: ...

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool: ...


@runtime_checkable
class KubeStatusWriter(Protocol):
    def apply_status(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj: ...

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: Obj,
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        resource_version: str | None = None,
    ) -> Obj: ...


@runtime_checkable
class Kube(KubeReader, KubeWriter, KubeStatusWriter, Protocol):
    """Reads and writes: what a step or a trigger that does both takes."""


def _client_is_a_kube(client: KubeClient) -> Kube:
    """Type-checked only: mypy proves here that the real client satisfies every port."""
    return client
