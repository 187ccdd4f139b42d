"""``kube``: the same contract tests on the :class:`~support.fake_kube.FakeKube` and, to keep the
fake honest, on the devcluster through the real :class:`bifrost.kube.KubeClient`;
``namespace``: a fresh namespace on either."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fake_kube import FakeKube
from support.inprocess import cluster, kubeconfig  # noqa: F401

from bifrost.kube import KubeClient
from bifrost.kube.ports import Kube


@pytest.fixture(scope="module")
def live_kube(kubeconfig: Path) -> Iterator[KubeClient]:  # noqa: F811
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(params=["fake", "devcluster"])
def kube(request: pytest.FixtureRequest) -> Kube:
    if request.param == "fake":
        return FakeKube()
    live: KubeClient = request.getfixturevalue("live_kube")
    return live


@pytest.fixture
def namespace(kube: Kube) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
