"""Authentication on the devcluster: the admin kubeconfig (over TLS, as kubectl needs), anonymous
requests, 401 for a bad token, ServiceAccount tokens (TokenRequest, ``kubectl create token``,
token Secrets) that die with their ServiceAccount, TokenReview and SelfSubjectReview,
impersonation (headers and ``kubectl --as``), tokens surviving a restart, and
``authorization="AlwaysAllow"``."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from auth_support import KUBECTL, api_client, call, kubectl, service_account_token
from kubernetes import client, config
from support.waiting import wait_for

from devcluster import DevCluster

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.fixture
def admin(devcluster: DevCluster) -> Iterator[client.ApiClient]:
    with api_client(devcluster, devcluster.admin_token) as c:
        yield c


def _needs_kubectl() -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl not installed")


def _whoami(cluster: DevCluster, token: str, headers: dict[str, str] | None = None) -> Any:
    status, answer = call(
        cluster,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        token=token,
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers=headers,
    )
    assert status == 201, answer
    return answer["status"]["userInfo"]


# ------------------------------------------------------------------- who is asking


def test_anonymous_requests_may_read_health_and_version_only(devcluster: DevCluster) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert call(devcluster, "GET", path)[0] == 200, path
    status, answer = call(devcluster, "GET", "/apis")
    assert (status, answer["message"]) == (
        403,
        'forbidden: User "system:anonymous" cannot get path "/apis"',
    )
    assert answer["details"] == {}
    status, answer = call(devcluster, "GET", "/api/v1/namespaces/default/configmaps")
    assert status == 403
    assert answer["message"] == (
        'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in '
        'API group "" in the namespace "default"'
    )


def test_an_unknown_token_is_401(devcluster: DevCluster) -> None:
    for path in ("/version", "/api/v1/namespaces"):
        assert call(devcluster, "GET", path, token="not-a-token") == (401, UNAUTHORIZED)
    core = client.CoreV1Api(api_client(devcluster, "not-a-token"))
    with pytest.raises(client.ApiException) as refused:
        core.list_namespace()
    assert refused.value.status == 401
    assert json.loads(refused.value.body) == UNAUTHORIZED


@pytest.mark.parametrize(
    ("authorization", "who"),
    [
        ("Bearer {admin}", "kubernetes-admin"),
        ("bearer {admin}", "kubernetes-admin"),
        ("BEARER {admin}", "kubernetes-admin"),
        ("Bearer {admin} more words", "kubernetes-admin"),
        ("Bearer {sa}", "system:serviceaccount:{ns}:reader"),
        ("bearer {sa}", "system:serviceaccount:{ns}:reader"),
        # upstream: an empty token (two spaces, or none) or another scheme is no bearer token
        ("Bearer  {admin}", "anonymous"),
        ("Bearer", "anonymous"),
        ("Basic {admin}", "anonymous"),
        ("{admin}", "anonymous"),
        ("Bearer {admin}x", 401),
        ("Bearer {sa}x", 401),
    ],
)
def test_the_authorization_header_as_upstream_reads_it(
    devcluster: DevCluster,
    admin: client.ApiClient,
    namespace: str,
    authorization: str,
    who: str | int,
) -> None:
    sa = service_account_token(admin, namespace, "reader")
    header = {"Authorization": authorization.format(admin=devcluster.admin_token, sa=sa)}
    status, answer = call(devcluster, "GET", "/apis", headers=header)
    if who == 401:
        assert (status, answer) == (401, UNAUTHORIZED)
    elif who == "anonymous":
        assert (status, answer["message"]) == (
            403,
            'forbidden: User "system:anonymous" cannot get path "/apis"',
        )
    else:
        assert status == 200, answer
        status, answer = call(
            devcluster,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            headers=header,
        )
        assert status == 201, answer
        assert answer["status"]["userInfo"]["username"] == str(who).format(ns=namespace)


def test_the_kubeconfig_is_the_admin_over_tls(
    devcluster: DevCluster, kubeconfig_path: Path
) -> None:
    doc = yaml.safe_load(kubeconfig_path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == devcluster.https_url
    assert devcluster.https_url.startswith("https://127.0.0.1:")
    ca = base64.b64decode(cluster["certificate-authority-data"])
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
    assert doc["users"][0]["user"] == {"token": devcluster.admin_token}
    with config.new_client_from_config(str(kubeconfig_path)) as api:
        me = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
    assert me.status.user_info.username == "kubernetes-admin"
    assert me.status.user_info.groups == ["system:masters", "system:authenticated"]
    # plain HTTP on the same port still works, with the same token
    assert call(devcluster, "GET", "/api/v1/namespaces", token=devcluster.admin_token)[0] == 200


def test_a_watch_over_tls_notices_the_client_hanging_up(
    devcluster: DevCluster, namespace: str
) -> None:
    ctx = ssl.create_default_context(cadata=devcluster.auth_service.ca.cert_pem().decode())
    raw = socket.create_connection(("127.0.0.1", devcluster.port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(
        f"GET /api/v1/namespaces/{namespace}/secrets?watch=true HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {devcluster.admin_token}\r\n\r\n".encode()
    )
    assert b"200 OK" in tls.recv(4096)
    wait_for(lambda: any(w.namespace == namespace for w in devcluster.store._watchers))
    tls.close()
    wait_for(lambda: not any(w.namespace == namespace for w in devcluster.store._watchers))


def test_kubectl_with_the_kubeconfig_is_the_admin(kubeconfig_path: Path) -> None:
    _needs_kubectl()
    out = kubectl(kubeconfig_path, "auth", "whoami", "-o", "json").stdout
    assert json.loads(out)["status"]["userInfo"]["username"] == "kubernetes-admin"
    assert kubectl(kubeconfig_path, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_static_tokens_are_users_with_groups(devcluster: DevCluster) -> None:
    token = f"t-{uuid.uuid4().hex}"
    devcluster.add_token(token, "jane", ["devs"])
    assert _whoami(devcluster, token) == {
        "username": "jane",
        "groups": ["devs", "system:authenticated"],
    }


# ------------------------------------------------------------------- ServiceAccount tokens


def test_token_request_answers_a_bound_token(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    sa = core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    before = datetime.datetime.now(datetime.UTC)
    made = core.create_namespaced_service_account_token("bot", namespace, {"spec": {}})
    assert made.spec.audiences == ["https://kubernetes.default.svc.cluster.local"]
    assert made.spec.expiration_seconds == 3600
    left = made.status.expiration_timestamp - before
    assert datetime.timedelta(seconds=3590) < left <= datetime.timedelta(seconds=3601)
    me = _whoami(devcluster, made.status.token)
    assert me["username"] == f"system:serviceaccount:{namespace}:bot"
    assert me["uid"] == sa.metadata.uid
    assert me["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    assert me["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    with pytest.raises(client.ApiException) as short:
        core.create_namespaced_service_account_token(
            "bot", namespace, {"spec": {"expirationSeconds": 60}}
        )
    assert short.value.status == 422
    assert json.loads(short.value.body)["message"] == (
        'TokenRequest.authentication.k8s.io "bot" is invalid: spec.expirationSeconds: Invalid '
        "value: 60: may not specify a duration less than 10 minutes"
    )
    with pytest.raises(client.ApiException) as missing:
        core.create_namespaced_service_account_token("ghost", namespace, {"spec": {}})
    assert missing.value.status == 404


def test_a_token_dies_with_its_service_account(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    token = service_account_token(admin, namespace, "short-lived")
    assert _whoami(devcluster, token)["username"].endswith(":short-lived")
    core = client.CoreV1Api(admin)
    core.delete_namespaced_service_account("short-lived", namespace)
    assert call(devcluster, "GET", "/version", token=token) == (401, UNAUTHORIZED)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "short-lived"}})
    assert call(devcluster, "GET", "/version", token=token)[0] == 401  # another uid


def test_a_token_bound_to_a_secret_dies_with_it(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "anchor"}})
    ref = {"apiVersion": "v1", "kind": "Secret", "name": "anchor"}
    token = service_account_token(admin, namespace, "bound", boundObjectRef=ref)
    assert call(devcluster, "GET", "/version", token=token)[0] == 200
    core.delete_namespaced_secret("anchor", namespace)
    assert call(devcluster, "GET", "/version", token=token)[0] == 401


def test_tokens_for_another_audience_are_for_token_review_only(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    token = service_account_token(admin, namespace, "vault-user", audiences=["vault"])
    assert call(devcluster, "GET", "/version", token=token)[0] == 401
    authn = client.AuthenticationV1Api(admin)
    review = authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=["vault"]))
    )
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:vault-user"
    assert review.status.audiences == ["vault"]
    refused = authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert not refused.status.authenticated and "audiences" in refused.status.error
    admin_review = authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=devcluster.admin_token))
    )
    assert admin_review.status.user.groups == ["system:masters", "system:authenticated"]


def test_kubectl_create_token_authenticates_as_the_service_account(
    devcluster: DevCluster, kubeconfig_path: Path, admin: client.ApiClient, namespace: str
) -> None:
    _needs_kubectl()
    client.CoreV1Api(admin).create_namespaced_service_account(
        namespace, {"metadata": {"name": "cli"}}
    )
    made = kubectl(kubeconfig_path, "create", "token", "cli", "-n", namespace, "--duration=15m")
    token = made.stdout.strip()
    assert _whoami(devcluster, token)["username"] == f"system:serviceaccount:{namespace}:cli"


def test_a_token_secret_is_filled_in_and_goes_with_its_service_account(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    sa = core.create_namespaced_service_account(namespace, {"metadata": {"name": "legacy"}})
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "legacy-token",
                "annotations": {"kubernetes.io/service-account.name": "legacy"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )

    def filled() -> dict[str, Any] | None:
        secret = core.read_namespaced_secret("legacy-token", namespace)
        return secret if (secret.data or {}).get("token") else None

    secret = wait_for(filled)
    assert secret.metadata.annotations["kubernetes.io/service-account.uid"] == sa.metadata.uid
    assert base64.b64decode(secret.data["namespace"]).decode() == namespace
    assert base64.b64decode(secret.data["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
    token = base64.b64decode(secret.data["token"]).decode()
    assert _whoami(devcluster, token)["username"] == f"system:serviceaccount:{namespace}:legacy"
    core.delete_namespaced_service_account("legacy", namespace)
    assert call(devcluster, "GET", "/version", token=token)[0] == 401

    def gone() -> bool:
        try:
            core.read_namespaced_secret("legacy-token", namespace)
        except client.ApiException as e:
            return e.status == 404
        return False

    wait_for(gone)


# ------------------------------------------------------------------- impersonation


def test_the_admin_may_impersonate_users_groups_and_extras(devcluster: DevCluster) -> None:
    me = _whoami(
        devcluster,
        devcluster.admin_token,
        {"Impersonate-User": "jane", "Impersonate-Extra-Scopes": "view"},
    )
    assert me == {
        "username": "jane",
        "groups": ["system:authenticated"],
        "extra": {"scopes": ["view"]},
    }
    sa = _whoami(
        devcluster, devcluster.admin_token, {"Impersonate-User": "system:serviceaccount:ns:bot"}
    )
    assert sa["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    ]


def test_impersonating_needs_the_impersonate_verb(
    devcluster: DevCluster, admin: client.ApiClient, namespace: str
) -> None:
    token = service_account_token(admin, namespace, "sneaky")
    user = f"system:serviceaccount:{namespace}:sneaky"
    status, answer = call(
        devcluster, "GET", "/version", token=token, headers={"Impersonate-User": "jane"}
    )
    assert status == 403
    assert answer["message"] == (
        f'users "jane" is forbidden: User "{user}" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )
    assert answer["details"] == {"name": "jane", "kind": "users"}
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "impersonate-sa"},
            "rules": [
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "impersonate-sa"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "impersonate-sa",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "sneaky"}],
        },
    )
    target = f"system:serviceaccount:{namespace}:other"
    assert _whoami(devcluster, token, {"Impersonate-User": target})["username"] == target
    status, answer = call(
        devcluster,
        "GET",
        "/version",
        token=token,
        headers={"Impersonate-User": target, "Impersonate-Group": "system:masters"},
    )
    assert status == 403
    assert answer["message"].startswith('groups "system:masters" is forbidden:')


def test_kubectl_as_a_user_and_a_group(kubeconfig_path: Path) -> None:
    _needs_kubectl()
    denied = kubectl(kubeconfig_path, "get", "configmaps", "--as=jane", check=False)
    assert denied.returncode == 1
    assert (
        'Error from server (Forbidden): configmaps is forbidden: User "jane" cannot list '
        'resource "configmaps" in API group "" in the namespace "default"'
    ) in denied.stderr
    as_admin = kubectl(
        kubeconfig_path, "get", "configmaps", "--as=jane", "--as-group=system:masters"
    )
    assert as_admin.returncode == 0
    out = kubectl(
        kubeconfig_path, "auth", "whoami", "--as=jane", "--as-group=a", "--as-group=b", "-o", "json"
    ).stdout
    assert json.loads(out)["status"]["userInfo"]["groups"] == ["a", "b", "system:authenticated"]


# ------------------------------------------------------------------- restart, modes


def test_tokens_and_the_ca_survive_a_restart_with_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with DevCluster(state_file=state) as first:
        kubeconfig = first.write_kubeconfig(tmp_path / "kubeconfig")
        admin = api_client(first, first.admin_token)
        token = service_account_token(admin, "default", "keeper")
        admin.close()
        admin_token = first.admin_token
    assert (tmp_path / "state.json.auth.json").stat().st_mode & 0o777 == 0o600
    with DevCluster(state_file=state) as second:
        assert second.admin_token == admin_token
        assert _whoami(second, token)["username"] == "system:serviceaccount:default:keeper"
        # the old kubeconfig's CA and token, pointed at the new port
        doc = yaml.safe_load(kubeconfig.read_text())
        doc["clusters"][0]["cluster"]["server"] = second.https_url
        kubeconfig.write_text(yaml.safe_dump(doc))
        with config.new_client_from_config(str(kubeconfig)) as api:
            assert client.CoreV1Api(api).read_namespace("default").metadata.name == "default"


def test_always_allow_lets_every_request_through() -> None:
    with DevCluster(authorization="AlwaysAllow") as cluster:
        assert call(cluster, "GET", "/api/v1/namespaces")[0] == 200
        status, review = call(
            cluster,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}},
        )
        assert (status, review["status"]) == (201, {"allowed": True})
    with pytest.raises(ValueError, match="authorization must be one of"):
        DevCluster(authorization="Webhook")
