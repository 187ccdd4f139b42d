"""Redaction: with ``spec.tls.source: ListenerSecret`` the blueprint's certificate template and
its ``readyWhen`` / ``secretName`` expressions see the user's TLS Secret, private key included.
Whatever mistake the blueprint author makes with it, no fragment of the key reaches anything
bifrost writes: operation rows, journal rows, the store at all, the Gateway's conditions, Events
or log lines. The errors still say which field is wrong and, where there is one, on which line.

Each case below is a mistake that quoted the key before redaction: a YAML error on the line that
prints it, an operator or lookup error on it, an expression result or an expression error that
contains it, and an API server rejection of a body rendered from it.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rotation_kit import Env, condition, example_blueprint, https_gateway
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.engine import Fail, Retry, Wait
from bifrost.kube import Invalid
from bifrost.kube.errors import Cause
from bifrost.steps.redaction import Redactor, rejection
from devcluster.peers.ca import IssuedCertificate, LocalCA

_HEAD = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ certificate.name | to_json }}
type: kubernetes.io/tls
data:
  tls.crt: {{ source.data['tls.crt'] | to_json }}
"""
COPY_TEMPLATE = _HEAD + "  tls.key: {{ source.data['tls.key'] | to_json }}\n"

# A cert-manager Certificate whose enum field gets the key: the API server's schema check rejects
# it, and its message quotes the offending value.
_CERTIFICATE_WITH_KEY = """\
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ certificate.name | to_json }}
spec:
  secretName: {{ certificate.secretName | to_json }}
  dnsNames: {{ certificate.hostnames | to_json }}
  issuerRef: {name: devcluster-ca, kind: ClusterIssuer}
  privateKey: {algorithm: {{ source.data['tls.key'] }}}
"""


@dataclass(frozen=True)
class Mistake:
    tls: dict[str, Any]
    field: str  # the blueprint field the message must name
    line: int | None = None  # the template line it must name, where there is one


MISTAKES = {
    # a YAML error on the line that prints the key (the line itself used to be quoted)
    "yaml-error-on-the-key-line": Mistake(
        {"certificateTemplate": _HEAD + "  tls.key: {{ source.data['tls.key'] }}: x\n"},
        "spec.tls.certificateTemplate", line=8),
    # an operator error on the key
    "operator-error-on-the-key": Mistake(
        {"certificateTemplate": _HEAD + "  tls.key: {{ source.data['tls.key'] + 1 }}\n"},
        "spec.tls.certificateTemplate", line=8),
    # a lookup with the key as the attribute name (Jinja's undefined message names it)
    "template-lookup-by-the-key": Mistake(
        {"certificateTemplate": _HEAD + "  tls.key: {{ source.data[source.data['tls.key']] }}\n"},
        "spec.tls.certificateTemplate", line=8),
    # an API server rejection of a body rendered from the Secret (it quotes the bad value)
    "api-server-rejects-the-key": Mistake(
        {"certificateTemplate": _CERTIFICATE_WITH_KEY}, "spec.tls.certificateTemplate"),
    # secretName gives the Secret's whole data instead of a name
    "secret-name-is-the-data": Mistake(
        {"certificateTemplate": COPY_TEMPLATE, "secretName": "object.data"},
        "spec.tls.secretName"),
    # secretName gives the key itself (a string, but no Secret of that name exists)
    "secret-name-is-the-key": Mistake(
        {"certificateTemplate": COPY_TEMPLATE, "secretName": "object.data['tls.key']"},
        "spec.tls.secretName"),
    # readyWhen fails on the key (CEL's parse error used to be quoted)
    "ready-when-parses-the-key": Mistake(
        {"certificateTemplate": COPY_TEMPLATE, "readyWhen": "int(object.data['tls.key']) > 0"},
        "spec.tls.readyWhen"),
    # readyWhen builds a regex from the key (an invalid one: the error quotes the pattern)
    "ready-when-regex-from-the-key": Mistake(
        {"certificateTemplate": COPY_TEMPLATE,
         "readyWhen": "'x'.matches('(' + object.data['tls.key'])"},
        "spec.tls.readyWhen"),
    # readyWhen looks a field up by the key (CEL's no-such-key error names it)
    "ready-when-lookup-by-the-key": Mistake(
        {"certificateTemplate": COPY_TEMPLATE,
         "readyWhen": "object.data[object.data['tls.key']] == ''"},
        "spec.tls.readyWhen"),
}


def _user_secret(namespace: str, name: str, issued: IssuedCertificate) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": b64(issued.chain_pem), "tls.key": b64(issued.key_pem)}}


def _fragments(key_pem: bytes) -> list[str]:
    """What must never appear: the base64 ``tls.key`` value and every 16-character slice of it,
    and every line of the PEM body (decoded) and every 16-character slice of those."""
    encoded = base64.b64encode(key_pem).decode()
    body = [line for line in key_pem.decode().splitlines() if line and not line.startswith("-----")]
    out = {encoded}
    for text in (encoded, *body):
        out.add(text)
        out.update(text[i:i + 16] for i in range(max(1, len(text) - 15)))
    return sorted(out)


def _store_dump(path: Path) -> str:
    """Every row of every table of the SQLite store, as SQL text."""
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


@pytest.mark.parametrize("case", list(MISTAKES))
def test_no_key_material_in_anything_bifrost_writes(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="bifrost")
    mistake = MISTAKES[case]
    ns = env.namespace
    issued = LocalCA.generate(common_name="user CA").issue(["s.example.com"])
    env.kube.apply(_user_secret(ns, "leak-user-tls", issued))
    env.kube.apply(example_blueprint(f"bp-{ns}", source="ListenerSecret", drainSeconds=0,
                                     issueTimeoutSeconds=2, **mistake.tls))
    env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    env.kube.apply(https_gateway(ns, "leak", f"gc-{ns}", ("s.example.com",)))

    def failed() -> Any:
        gw = env.gateway("leak")
        uid = ((gw or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        ops = [o for o in env.store.list_operations(gateway_uid=uid)
               if o.machine == "provision" and o.status.value == "failed"]
        cond = condition(gw, "gateway.bifrost.dev/Operation")
        events, _ = env.kube.list("events.k8s.io/v1", "Event", ns)
        warned = [e for e in events if e.get("type") == "Warning"
                  and (e.get("regarding") or {}).get("name") == "leak"]
        if ops and cond and cond.get("reason") == "Failed" and warned:
            return uid, ops[0]
        return None

    uid, op = wait_for(failed, timeout=60, what="the provision to fail, shown on the Gateway")

    # the error is useful: it names the field, and the line where there is one
    message = op.last_error or ""
    assert mistake.field in message, message
    if mistake.line is not None:
        assert f"line {mistake.line}" in message, message

    # collect every text bifrost produced
    ops = env.store.list_operations(gateway_uid=uid)
    journal = env.store.journal(gateway_uid=uid)
    events, _ = env.kube.list("events.k8s.io/v1", "Event", ns)
    texts = {
        "operations": json.dumps([o.model_dump(mode="json") for o in ops]),
        "journal": json.dumps([j.model_dump(mode="json") for j in journal]),
        "gateway status": json.dumps((env.gateway("leak") or {}).get("status")),
        "events": json.dumps(events),
        "logs": caplog.text,
        "store": _store_dump(tmp_path / "store.db"),
    }
    # what was collected does hold the failure (the same redacted message, the field)
    assert message in texts["logs"]
    assert all(mistake.field in texts[k] for k in ("journal", "gateway status", "events"))
    for where, text in texts.items():
        leaked = [f for f in _fragments(issued.key_pem) if f in text]
        assert not leaked, f"key material in the {where}: {leaked[:3]}"


# --- the two redaction layers of the steps, on their own ---------------------------------------


def test_redactor_masks_every_copied_run_and_keeps_the_rest() -> None:
    issued = LocalCA.generate(common_name="user CA").issue(["u.example.com"])
    secret = _user_secret("ns", "user-tls", issued)
    encoded = secret["data"]["tls.key"]
    pem_line = issued.key_pem.decode().splitlines()[1]
    redactor = Redactor.of(secret)
    for leak in (encoded, encoded[40:56], encoded[7:90], pem_line, pem_line[3:30]):
        said = redactor.text(f"listener https-0: Secret x-tls says {leak}!")
        assert said == "listener https-0: Secret x-tls says …!", leak
    # what is not copied from the data stays as it is, a short coincidence too
    assert redactor.text(f"child 'lb' is ready {encoded[:8]}") == \
        f"child 'lb' is ready {encoded[:8]}"
    assert redactor.outcome(Fail(f"a {encoded}")) == Fail("a …")
    assert redactor.outcome(Retry(f"b {pem_line}")).error == "b …"  # type: ignore[union-attr]
    assert redactor.outcome(Wait(f"c {encoded[9:30]}", timedelta(1))).reason == "c …"  # type: ignore[union-attr]
    assert not Redactor.of(None) and Redactor.of(None).text(encoded) == encoded


def test_rejection_masks_the_values_it_quotes_from_the_body_only() -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-tls", "namespace": "a"},
            "data": {"s3cr3t-key-name-of-20": "c2VjcmV0IHZhbHVlIG9mIG1hbnkgY2hhcnM="}}
    error = Invalid(
        'Secret "web-tls" is invalid: [data[s3cr3t-key-name-of-20]: Invalid value: '
        '"c2VjcmV0IHZhbHVlIG9mIG1hbnkgY2hhcnM=": must be one of "a", "b", '
        'spec.items[0]: Invalid value: "c2VjcmV0IHZhbHVlIG9m...": too long]',
        status=422, reason="Invalid", kind="Secret", name="web-tls", namespace="a",
        causes=(Cause("FieldValueInvalid", "x", "data"),))
    said = rejection(error, body)
    assert "c2VjcmV0" not in said and "s3cr3t" not in said, said
    assert said.startswith('422 Invalid: Secret "web-tls" is invalid: [data[…]: Invalid value: '
                           '"…": must be one of "a", "b", spec.items[0]: Invalid value: "…"'), said
