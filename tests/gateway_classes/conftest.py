"""Fixtures for the GatewayClass and blueprint-validity scenarios: one devcluster with its peers
(the cert-manager-like issuer matters here) and bifrost's Controller in-process on it, for the
module; a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inprocess import running_controller, sqlite_store
from support.peers_cluster import peers_cluster

from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeClient]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=14) as running:
        client = KubeClient.from_kubeconfig(running.kubeconfig)
        try:
            yield client
        finally:
            client.close()


@pytest.fixture(scope="module")
def controller(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    directory: Path = tmp_path_factory.mktemp("store")
    with sqlite_store(directory) as store, running_controller(
        kube, store, name="classes", renewal_jitter=0.0
    ) as running:
        yield running


@pytest.fixture
def namespace(kube: KubeClient, controller: Controller) -> str:
    name = f"gc-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
