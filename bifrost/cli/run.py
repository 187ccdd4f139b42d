"""``bifrost run``: the controller as its own process, against any cluster.

In a pod it uses the in-cluster configuration (service account); elsewhere a kubeconfig — a real
cluster's or the devcluster's — so the controller can be killed and restarted independently of
the cluster it manages. It opens (and by default migrates) the store, checks that the API server
is reachable and serves the Gateway API, then runs until SIGINT/SIGTERM with leader election on
the ``bifrost-controller`` Lease. Expected failures (no cluster, no CRDs, no database, a schema
this code does not know) print one line on stderr and exit 1.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from logging.handlers import MemoryHandler
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bifrost.kube import KubeClient

__all__ = ["RunError", "parse_bind_address", "parse_log_level", "register", "run_controller"]

log = logging.getLogger(__name__)


class RunError(Exception):
    """An expected start-up failure: one line for the user."""


def _preflight(kube: KubeClient, *, lease_namespace: str) -> None:
    """Fail fast, with what to do, when the cluster cannot host the controller: unreachable, a
    watched kind not served (CRDs missing), or no namespace for the Lease."""
    from bifrost.controller.informers import WATCHED
    from bifrost.kube import KubeError, UnknownKind

    for spec in WATCHED:
        try:
            kube.is_namespaced(spec.api_version, spec.kind)
        except UnknownKind as exc:
            hint = (
                "install bifrost's CRDs (deploy/crds)"
                if spec.api_version.startswith("gateway.bifrost.dev/")
                else "install the Gateway API CRDs"
                if spec.api_version.startswith("gateway.networking.k8s.io/")
                else "check the API server"
            )
            raise RunError(
                f"the API server at {kube.host} does not serve {spec.kind} "
                f"({spec.api_version}): {hint}"
            ) from exc
        except KubeError as exc:
            raise RunError(f"cannot reach the API server at {kube.host}: {exc}") from exc
    try:
        found = kube.get("v1", "Namespace", lease_namespace)
    except KubeError as exc:
        raise RunError(f"cannot reach the API server at {kube.host}: {exc}") from exc
    if found is None:
        raise RunError(
            f"namespace {lease_namespace!r} for the leader-election Lease does not exist: "
            "create it, or set POD_NAMESPACE to the controller's namespace"
        )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(value: str) -> str:
    """``--log-level``: a standard level name, any case; else a usage error (exit 2)."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not a log level: use one of "
                                 f"{', '.join(LOG_LEVELS)}", param_hint="--log-level")
    return level


def check_log_format(value: str | None) -> str:
    """``--log-format``: json or text (default: json in a pod, text elsewhere); else a usage
    error (exit 2)."""
    from bifrost.cli.logs import parse_log_format

    try:
        return parse_log_format(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-format") from None


def check_bind_address(value: str) -> str:
    """``--metrics-bind-address`` checked while the command line is parsed (a usage error)."""
    try:
        parse_bind_address(value)
    except RunError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def check_admin_bind_address(value: str) -> str:
    """``--admin-bind-address`` checked while the command line is parsed (a usage error)."""
    try:
        parse_bind_address(value, "--admin-bind-address")
    except RunError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def parse_bind_address(value: str, option: str = "--metrics-bind-address") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8081`` for IPv6; ``:8081`` means every interface) → (host,
    port); ``""`` or ``"0"`` → ("", 0), disabled."""
    value = value.strip()
    if value in ("", "0"):
        return "", 0
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise RunError(f"{option} {value!r} is not HOST:PORT (e.g. 127.0.0.1:8081; 0 disables "
                       "it)")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ':PORT' asks for every interface
    return host, int(port)


def run_controller(
    *,
    stop: threading.Event,
    kubeconfig: Path | None = None,
    context: str | None = None,
    database_url: str | None = None,
    health_port: int = 0,
    metrics_bind_address: str = "",
    admin_bind_address: str = "",
    identity: str | None = None,
    lease_duration: float = 15.0,
    renew_deadline: float | None = None,
    retry_period: float | None = None,
    resync_seconds: float = 300.0,
    workers: int = 4,
    stall_seconds: float = 120.0,
    database_lost_seconds: float = 60.0,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Compose settings → store → client → controller and run until ``stop`` is set.

    ``on_started`` is called once start-up succeeded, just before the controller runs.
    """
    from bifrost import sandbox
    from bifrost.controller.health import HealthOptions
    from bifrost.controller.manager import (
        Controller,
        ControllerOptions,
        default_lease_namespace,
    )
    from bifrost.kube import KubeClient, KubeError
    from bifrost.kube.identity import default_identity
    from bifrost.settings import Settings
    from bifrost.store import StoreError, migrate, open_store

    metrics_host, metrics_port = parse_bind_address(metrics_bind_address)
    admin_host, admin_port = parse_bind_address(admin_bind_address, "--admin-bind-address")
    settings = Settings()
    sandbox.configure(sandbox.SandboxSettings(
        workers=settings.sandbox_workers,
        memory_mb=settings.sandbox_memory_mb,
        render_seconds=settings.sandbox_render_seconds,
        expression_seconds=settings.sandbox_expression_seconds,
    ))
    url = database_url or settings.resolved_database_url()
    if url.startswith("sqlite:///") and database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if settings.migrate_on_start:
            migrate.upgrade(url)
        store = open_store(url)
    except StoreError as exc:
        raise RunError(str(exc)) from exc
    try:
        try:
            kube = KubeClient.auto(kubeconfig, context)
        except KubeError as exc:
            raise RunError(f"cannot configure the Kubernetes client: {exc}") from exc
        except Exception as exc:  # the official client's ConfigException & co.
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise RunError(f"cannot load kubeconfig {where}: {exc}") from exc
        try:
            _preflight(kube, lease_namespace=default_lease_namespace())
        except RunError:
            kube.close()
            raise
        renew = renew_deadline if renew_deadline is not None else lease_duration * 2 / 3
        retry = retry_period if retry_period is not None else max(0.1, renew / 5)
        options = ControllerOptions(
            identity=identity or default_identity(),
            lease_duration=lease_duration,
            renew_deadline=renew,
            retry_period=retry,
            health_port=health_port,
            metrics_host=metrics_host or "127.0.0.1",
            metrics_port=metrics_port,
            resync_interval=resync_seconds,
            workers=workers,
            runner_idle=timedelta(seconds=0.5),
            runner_lease=(None if settings.runner_lease_seconds is None
                          else timedelta(seconds=settings.runner_lease_seconds)),
            renewal_poll=timedelta(seconds=settings.renewal_poll_seconds),
            renewal_jitter=settings.renewal_jitter_seconds,
            health=HealthOptions(stall_after=timedelta(seconds=stall_seconds),
                                 database_lost_after=timedelta(seconds=database_lost_seconds)),
        )
        try:
            controller = Controller(kube, store, options=options)
        except ValueError as exc:
            kube.close()
            raise RunError(str(exc)) from exc
        log.info(
            "bifrost controller %s starting against %s (store %s)",
            options.identity,
            kube.host,
            url.split("@")[-1],
        )
        if on_started is not None:
            on_started()
        admin_api = None
        try:
            if admin_port:  # bifrost-admin --server: see bifrost.admin.server
                from bifrost.admin.server import AdminApi, AdminApiServer, Gatekeeper

                admin_api = AdminApiServer(AdminApi(
                    store, registry=controller.registry, clock=controller.clock,
                    gatekeeper=Gatekeeper(kube)), admin_host or "127.0.0.1", admin_port)
                admin_api.start()
            controller.run(stop)
        finally:
            if admin_api is not None:
                admin_api.stop()
            kube.close()
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``bifrost run`` to the ``bifrost`` app."""

    @app.command("run")
    def run(
        kubeconfig: Annotated[
            Path | None,
            typer.Option(
                "--kubeconfig",
                help="Kubeconfig file (default: in-cluster config in a pod, else $KUBECONFIG "
                "or ~/.kube/config).",
            ),
        ] = None,
        context: Annotated[
            str | None, typer.Option("--context", help="Kubeconfig context to use.")
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                envvar="BIFROST_DATABASE_URL",
                help="Store URL (default: SQLite in BIFROST_DATA_DIR, else the XDG state dir).",
            ),
        ] = None,
        health_port: Annotated[
            int,
            typer.Option(
                "--health-port",
                envvar="BIFROST_HEALTH_PORT",
                help="Serve /healthz and /readyz on this port (0: disabled).",
            ),
        ] = 0,
        metrics_bind_address: Annotated[
            str,
            typer.Option(
                "--metrics-bind-address",
                envvar="BIFROST_METRICS_BIND_ADDRESS",
                callback=check_bind_address,
                help="Serve /metrics on HOST:PORT, never on the health port (deploy/ uses "
                "127.0.0.1:8081: only the pod itself can scrape; ':8081' listens on every "
                "interface, see deploy/README.md). 0: off.",
            ),
        ] = "0",
        admin_bind_address: Annotated[
            str,
            typer.Option(
                "--admin-bind-address",
                envvar="BIFROST_ADMIN_BIND_ADDRESS",
                callback=check_admin_bind_address,
                help="Serve the admin API of bifrost-admin --server on HOST:PORT (deploy/ uses "
                "127.0.0.1:8082, reached with kubectl port-forward; plain HTTP, callers "
                "authorized by TokenReview and SubjectAccessReview). 0: off.",
            ),
        ] = "0",
        identity: Annotated[
            str | None,
            typer.Option(
                "--identity", help="Leader-election identity (default: $POD_NAME or host_pid)."
            ),
        ] = None,
        lease_duration: Annotated[
            float,
            typer.Option(
                "--lease-duration",
                envvar="BIFROST_LEASE_DURATION",
                help="Seconds a leader's Lease is valid without renewal.",
            ),
        ] = 15.0,
        resync_seconds: Annotated[
            float, typer.Option("--resync-seconds", help="Seconds between full resyncs.")
        ] = 300.0,
        workers: Annotated[int, typer.Option("--workers", help="Reconcile workers.")] = 4,
        stall_seconds: Annotated[
            float,
            typer.Option("--health-stall-seconds", envvar="BIFROST_HEALTH_STALL_SECONDS",
                         min=1.0, help="/healthz fails when the leader elector, a reconcile "
                         "worker or an engine runner made no progress for this long."),
        ] = 120.0,
        database_lost_seconds: Annotated[
            float,
            typer.Option("--health-database-lost-seconds",
                         envvar="BIFROST_HEALTH_DATABASE_LOST_SECONDS", min=0.0,
                         help="/healthz fails when the database has been unreachable for this "
                         "long (/readyz fails at once)."),
        ] = 60.0,
        log_level: Annotated[
            str,
            typer.Option("--log-level", callback=parse_log_level,
                         help="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
        ] = "INFO",
        log_format: Annotated[
            str | None,
            typer.Option("--log-format", envvar="BIFROST_LOG_FORMAT", callback=check_log_format,
                         help="Log lines as json (one object a line, with gateway, operation, "
                         "machine, step, attempt) or text. Default: json in a pod "
                         "($KUBERNETES_SERVICE_HOST set), else text."),
        ] = None,
    ) -> None:
        """Run the bifrost controller until SIGINT/SIGTERM."""
        from bifrost.cli.logs import ContextFilter, log_handler, quiet_third_parties

        # Start-up logs are held back: an expected failure prints its one line and nothing
        # else; once the controller runs they are written out and logging goes to stderr.
        console = log_handler(log_format or "text", sys.stderr)
        held = MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1, target=console)
        held.addFilter(ContextFilter())  # the fields of when a line was logged, not written
        root = logging.getLogger()
        root.setLevel(log_level.upper())
        root.addHandler(held)
        quiet_third_parties()

        def started() -> None:
            held.flush()
            root.removeHandler(held)
            root.addHandler(console)

        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            run_controller(
                stop=stop,
                kubeconfig=kubeconfig,
                context=context,
                database_url=database_url,
                health_port=health_port,
                metrics_bind_address=metrics_bind_address,
                admin_bind_address=admin_bind_address,
                identity=identity,
                lease_duration=lease_duration,
                resync_seconds=resync_seconds,
                workers=workers,
                stall_seconds=stall_seconds,
                database_lost_seconds=database_lost_seconds,
                on_started=started,
            )
        except (RunError, ValueError, OSError) as exc:
            held.buffer.clear()
            print("bifrost run: " + " ".join(str(exc).split()), file=sys.stderr)
            raise typer.Exit(1) from None
        finally:
            held.close()


if __name__ == "__main__":  # pragma: no cover - `python -m bifrost.cli.run` (tests, debugging)
    from bifrost.cli.entry import run_app

    _app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(_app)
    sys.exit(run_app(_app, "bifrost run"))
