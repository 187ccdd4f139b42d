"""A certificate rotation logged as ``bifrost run --log-format json --log-level DEBUG`` logs it:
every line parses as JSON with time, level, logger and message; the engine's lines of the
rotation carry its gateway, operation, machine, step and attempt; and no line holds secret
material — no PEM block, and neither the base64 nor the PEM text of any certificate or key in
the namespace's Secrets (issued, attached, old and new).

The devcluster runs with its simulated peers (issuer, load balancer, TLS data plane) and the
controller in-process; the log handler is the CLI's (:func:`bifrost.cli.logs.log_handler`) on the
root logger, third parties quieted as the CLI does."""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rotation.rotation_kit import Env, example_blueprint, https_gateway, running_controller
from support.builders import gateway_class
from support.peers_cluster import peers_cluster

from bifrost.cli.logs import QUIET_LOGGERS, log_handler, quiet_third_parties
from bifrost.kube import KubeClient
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.store import migrate, open_store

REQUIRED = ("time", "level", "logger", "message")
ENGINE_FIELDS = ("gateway", "operation", "machine", "step", "attempt")


@pytest.fixture(scope="module")
def peers_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=17) as running:
        yield running.kubeconfig


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The CLI's JSON handler on the root logger at DEBUG, as ``bifrost run`` sets it up."""
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in QUIET_LOGGERS})
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_third_parties()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def secret_material(kube: KubeClient, namespace: str) -> set[str]:
    """Every Secret value in ``namespace`` as stored (base64), decoded, and each line of a PEM
    body (a log line quoting part of a key shows at least one of them)."""
    found: set[str] = set()
    secrets, _ = kube.list("v1", "Secret", namespace=namespace)
    for secret in secrets:
        for value in (secret.get("data") or {}).values():
            found.add(value)
            text = base64.b64decode(value).decode(errors="replace")
            found.add(text)
            found.update(line for line in text.splitlines()
                         if len(line) >= 40 and not line.startswith("-----"))
    return {s for s in found if len(s) >= 40}


def test_rotation_logs_parse_carry_the_ids_and_hold_no_secret(
        peers_kubeconfig: Path, tmp_path: Path, json_log: io.StringIO) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(peers_kubeconfig)
    ns = f"l-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        with running_controller(kube, store, identity=f"ctl-{ns}") as controller:
            env = Env(kube, store, ns, controller)
            kube.apply(example_blueprint(f"bp-{ns}", drainSeconds=0))
            kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
            kube.apply(https_gateway(ns, "logged", f"gc-{ns}", ("l.example.com",)))
            uid = env.programmed("logged")["metadata"]["uid"]
            (cert,) = env.attached(uid, "https-0")
            secrets = secret_material(kube, ns)  # the old certificate's, deleted by the rotation
            rotation = env.start_rotation(cert)
            done = env.finished(rotation.id)
            assert done.status.value == "succeeded", done.last_error
        secrets |= secret_material(kube, ns)
    finally:
        kube.close()
        store.close()

    lines = [line for line in json_log.getvalue().splitlines() if line.strip()]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line parses
    assert all(all(key in r for key in REQUIRED) for r in records)
    assert logging.getLogger("bifrost").isEnabledFor(logging.DEBUG) and len(records) > 20

    mine = [r for r in records if r.get("operation") == rotation.id]
    assert mine, "no line of the rotation carries its operation id"
    assert all(r["gateway"] == f"{ns}/logged" and r["machine"] == ROTATION_MACHINE for r in mine)
    steps = [r for r in mine if "step" in r]
    assert steps and all(isinstance(r["attempt"], int) for r in steps)
    assert any(r["logger"] == "bifrost.engine.runner" and all(k in r for k in ENGINE_FIELDS)
               for r in mine), "no engine line with all five fields"
    assert any(f"operation {rotation.id} finished" in r["message"] for r in records)

    keys = [s for s in secrets if "PRIVATE KEY-----" in s]
    assert len(keys) >= 2, "the old and new private keys were not found"
    text = json_log.getvalue()
    assert "-----BEGIN" not in text and "PRIVATE KEY" not in text
    leaked = [s[:12] for s in secrets if s in text]
    assert leaked == [], f"secret material in the log (first characters: {leaked})"
