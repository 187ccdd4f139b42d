"""``retry --wait`` and ``renew --wait`` follow the operation to its end, a progress line per
change, on the direct path and through the admin API alike: exit 0 on success, 5 when it fails
or is cancelled, 6 at ``--timeout``. The wait's pause between polls is the injected ``sleep``,
which here lets the engine run one round and moves the manual clock: no real sleeping."""

from __future__ import annotations

import json
from datetime import timedelta

from remote_kit import Accounts, Remote
from support.admin_fleet import Fleet

from bifrost.cli.admin import AdminEnv
from bifrost.engine import Fail, Wait
from bifrost.engine.step import StepOutcome
from bifrost.records import OperationStatus as S


def _engine_between_polls(fleet: Fleet) -> AdminEnv:
    def sleep(seconds: float) -> None:
        fleet.clock.advance(timedelta(seconds=seconds))
        fleet.runner.run_once(limit=1)  # one step per poll: the display sees each change

    return fleet.env(sleep=sleep)


def _failed_once(fleet: Fleet, namespace: str = "infra", *later: StepOutcome) -> None:
    web = fleet.gateway(namespace, "web")
    fleet.queue(web, "apply", Fail("quota exceeded"), *later)
    fleet.start(web)
    fleet.run()
    assert fleet.store.get_operation(1).status is S.FAILED


def test_retry_wait_shows_each_step_and_exits_0_when_it_succeeds(fleet: Fleet) -> None:
    _failed_once(fleet)
    fleet.queue(fleet.store.find_gateways("infra", "web")[0], "check",
                Wait("not yet", timedelta(seconds=1)))
    result = fleet.admin("retry", "infra/web", "--wait", "--actor", "ops@bastion",
                         env=_engine_between_polls(fleet))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    assert progress == [
        "#1 deliver infra/web: waiting, state prepare step apply, last error: quota exceeded",
        "#1 deliver infra/web: waiting, state verify step check",
        "#1 deliver infra/web: succeeded, state delivered",
    ]
    assert lines[-1].startswith("operation #1 deliver succeeded in state delivered after ")
    assert fleet.store.get_operation(1).status is S.SUCCEEDED


def test_retry_wait_exits_5_when_the_operation_fails_again(fleet: Fleet) -> None:
    _failed_once(fleet, "infra", Fail("quota still exceeded"))
    result = fleet.admin("retry", "infra/web", "--wait", env=_engine_between_polls(fleet))
    assert result.exit_code == 5
    assert result.stderr.strip() == (
        "error: operation #1 deliver failed in state prepare after 7.0s: quota still exceeded")
    assert "failed, state prepare step apply" in result.stdout


def test_wait_timeout_exits_6_and_leaves_the_operation_running(fleet: Fleet) -> None:
    web = fleet.gateway("infra", "web")
    fleet.queue(web, "apply", Fail("quota exceeded"))
    fleet.start(web)
    fleet.run()
    stalled = fleet.env(sleep=lambda s: fleet.clock.advance(timedelta(seconds=s)))
    result = fleet.admin("retry", "infra/web", "--wait", "--timeout", "5", env=stalled)
    assert result.exit_code == 6
    assert result.stderr.strip() == (
        "error: --timeout 5s passed while operation #1 deliver is waiting in state prepare; "
        "it goes on (follow it with bifrost-admin show infra/web --watch)")
    assert fleet.store.get_operation(1).status is S.WAITING


def test_timeout_without_wait_is_bad_input(fleet: Fleet) -> None:
    _failed_once(fleet)
    result = fleet.admin("retry", "infra/web", "--timeout", "5")
    assert result.exit_code == 2
    assert "--timeout needs --wait" in result.stderr
    assert fleet.store.get_operation(1).status is S.FAILED  # refused before acting


def test_json_wait_keeps_stdout_one_document(fleet: Fleet) -> None:
    _failed_once(fleet)
    result = fleet.admin("-o", "json", "retry", "infra/web", "--wait",
                         env=_engine_between_polls(fleet))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "ActionResult"
    assert "succeeded, state delivered" in result.stderr


def test_renew_wait_without_an_operation_says_so(fleet: Fleet) -> None:
    web = fleet.gateway("infra", "web")
    fleet.certificate(web, "https", "web-https-1", days_left=30, renew_in_days=10)
    result = fleet.admin("renew", "infra/web", "--wait")  # no rotation machine: marked due
    assert result.exit_code == 0, result.stderr
    assert "--wait has nothing to follow" in result.stderr


def test_retry_wait_through_the_admin_api(fleet: Fleet, accounts: Accounts,
                                          remote: Remote) -> None:
    ns = accounts.home
    _failed_once(fleet, ns)
    editor = accounts.token("editor", role="edit", namespace=ns)
    result = remote(editor, "retry", f"{ns}/web", "--wait", env=_engine_between_polls(fleet))
    assert result.exit_code == 0, result.stderr
    assert f"#1 deliver {ns}/web: succeeded, state delivered" in result.stdout
    # following needs get: a token that may update but not get cannot follow (none such in
    # the aggregated roles), and one that may not read at all is refused before acting
    reader_elsewhere = accounts.token("stranger")
    refused = remote(reader_elsewhere, "retry", f"{ns}/web", "--wait")
    assert refused.exit_code == 4
