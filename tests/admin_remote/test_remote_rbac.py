"""bifrost-admin --server against a devcluster with RBAC enforced: what a ServiceAccount may read
and do through the admin API is what Kubernetes RBAC grants it on ``gateways/operations``
(deploy/base/rbac-admin.yaml, aggregated into view/edit/admin); a refusal is one line naming the
verb and resource, exit 4; the documents are the direct path's, byte for byte."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from remote_kit import Accounts, Remote
from support.admin_fleet import Fleet
from typer.testing import CliRunner

from bifrost.cli.admin import app
from bifrost.engine import Fail
from bifrost.records import OperationStatus as S

GROUP = 'in API group "gateway.bifrost.dev"'


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def _gateways(fleet: Fleet, namespace: str) -> None:
    web = fleet.gateway(namespace, "web")
    fleet.gateway("other-ns", "api")
    fleet.start(web, hosts=["www.example.com"])
    fleet.run()


def test_a_reader_gets_gateways_and_history_in_its_namespace(
    fleet: Fleet, accounts: Accounts, remote: Remote
) -> None:
    ns = accounts.home
    _gateways(fleet, ns)
    token = accounts.token("reader", role="view", namespace=ns)

    listed = remote(token, "-o", "json", "gateways", "-n", ns)
    assert listed.exit_code == 0, listed.stderr
    assert [g["name"] for g in json.loads(listed.stdout)["gateways"]] == ["web"]

    history = remote(token, "history", f"{ns}/web")
    assert history.exit_code == 0, history.stderr
    assert "deliver" in history.stdout and "render" in history.stdout

    # view in one namespace is not a cluster-wide list, nor another namespace's gateway
    everywhere = remote(token, "gateways")
    assert everywhere.exit_code == 4
    assert _one_line(everywhere.stderr) == (
        f'error: 403 Forbidden: User "{accounts.user("reader")}" cannot list resource '
        f'"gateways/operations" {GROUP} at the cluster scope')
    elsewhere = remote(token, "show", "other-ns/api")
    assert elsewhere.exit_code == 4
    assert 'cannot get resource "gateways/operations" named "api"' in elsewhere.stderr
    assert 'in the namespace "other-ns"' in elsewhere.stderr


def test_without_the_read_permission_the_answer_is_the_403_line(
    fleet: Fleet, accounts: Accounts, remote: Remote
) -> None:
    ns = accounts.home
    _gateways(fleet, ns)
    token = accounts.token("nobody")  # authenticated, no binding
    for args, verb, named in ((("history", f"{ns}/web"), "get", ' named "web"'),
                              (("gateways", "-n", ns), "list", ""),
                              (("schedule",), "list", "")):
        result = remote(token, *args)
        assert result.exit_code == 4, (args, result.stdout)
        scope = f'in the namespace "{ns}"' if verb == "get" or "-n" in args \
            else "at the cluster scope"
        assert _one_line(result.stderr) == (
            f'error: 403 Forbidden: User "{accounts.user("nobody")}" cannot {verb} resource '
            f'"gateways/operations"{named} {GROUP} {scope}'), args
        assert result.stdout == ""


def test_a_write_action_needs_update_which_edit_grants(
    fleet: Fleet, accounts: Accounts, remote: Remote
) -> None:
    ns = accounts.home
    web = fleet.gateway(ns, "web")
    fleet.queue(web, "apply", Fail("quota exceeded"))
    fleet.start(web)
    fleet.run()
    assert fleet.store.get_operation(1).status is S.FAILED
    reader = accounts.token("reader", role="view", namespace=ns)
    editor = accounts.token("editor", role="edit", namespace=ns)

    refused = remote(reader, "retry", f"{ns}/web")
    assert refused.exit_code == 4
    assert _one_line(refused.stderr) == (
        f'error: 403 Forbidden: User "{accounts.user("reader")}" cannot update resource '
        f'"gateways/operations" named "web" {GROUP} in the namespace "{ns}"')
    assert fleet.store.get_operation(1).status is S.FAILED  # nothing happened

    # by operation id too: the server finds the operation's gateway and asks about it
    assert remote(reader, "pause", "1").exit_code == 4

    allowed = remote(editor, "-o", "json", "retry", f"{ns}/web")
    assert allowed.exit_code == 0, allowed.stderr
    result = json.loads(allowed.stdout)
    assert (result["kind"], result["from_status"], result["to_status"]) == \
        ("ActionResult", "failed", "waiting")
    # the journal records the user the cluster authenticated, not a name the client chose
    assert result["actor"] == accounts.user("editor")
    assert fleet.store.get_operation(1).status is S.WAITING

    chosen = remote(editor, "retry", f"{ns}/web", "--actor", "someone-else")
    assert chosen.exit_code == 2 and "--actor cannot be given with --server" in chosen.stderr
    # an action the engine refuses is the direct path's line and exit code (3)
    again = remote(editor, "retry", f"{ns}/web")
    assert again.exit_code == 3
    assert _one_line(again.stderr).startswith(f"error: cannot retry: gateway {ns}/web has no")


def test_an_invalid_token_is_the_401_line(fleet: Fleet, accounts: Accounts,
                                          remote: Remote) -> None:
    ns = accounts.home
    _gateways(fleet, ns)
    for args in (("history", f"{ns}/web"), ("pause", f"{ns}/web"), ("nonsense-route",)):
        result = remote("not-a-token", *args)
        if args == ("nonsense-route",):
            assert result.exit_code == 2  # the CLI's own usage error, never sent
            continue
        assert result.exit_code == 4, result.stdout
        verb = "get" if args[0] == "history" else "update"
        assert _one_line(result.stderr) == (
            "error: 401 Unauthorized: the cluster did not accept the token (TokenReview: invalid "
            f'bearer token); cannot {verb} resource "gateways/operations" named "web" {GROUP} '
            f'in the namespace "{ns}"')


def test_the_documents_are_the_direct_paths(fleet: Fleet, accounts: Accounts,
                                            remote: Remote) -> None:
    ns = accounts.home
    _gateways(fleet, ns)
    token = accounts.token("admin-user", role="admin")  # cluster-wide (ClusterRoleBinding)
    for args in (("gateways",), ("show", f"{ns}/web"), ("history", f"{ns}/web"),
                 ("schedule",), ("graph", "deliver", "--gateway", f"{ns}/web")):
        direct = fleet.admin("-o", "json", *args)
        assert direct.exit_code == 0, direct.stderr
        served = remote(token, "-o", "json", *args)
        assert served.exit_code == 0, (args, served.stderr)
        assert json.loads(served.stdout) == json.loads(direct.stdout), args
        # the table too: rendered from the same document
        assert remote(token, *args).stdout == fleet.admin(*args).stdout, args


def test_the_token_comes_from_the_kubeconfig_by_default(
    fleet: Fleet, accounts: Accounts, remote: Remote, kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gateways(fleet, accounts.home)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # the cluster admin's token
    result = remote(None, "-o", "json", "gateways")
    assert result.exit_code == 0, result.stderr
    assert {g["name"] for g in json.loads(result.stdout)["gateways"]} == {"web", "api"}


def test_an_unreachable_server_is_one_line(fleet: Fleet) -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        result = CliRunner().invoke(app, ["--server", url, "--token", "t", "gateways"],
                                    obj=fleet.env())
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert line.startswith(f"error: bifrost admin API at {url} did not answer")
    assert "port-forward" in line


def test_server_and_database_url_together_are_bad_input(fleet: Fleet) -> None:
    for args in (["--server", "http://127.0.0.1:1", "--token", "t", "--database-url", fleet.url,
                  "gateways"],
                 ["--server", "http://127.0.0.1:1", "--token", "t", "gateways",
                  "--database-url", fleet.url]):
        result = CliRunner().invoke(app, args, obj=fleet.env())
        assert result.exit_code == 2, result.stderr
        assert _one_line(result.stderr) == "error: give --server or --database-url, not both"
