"""``bifrost-admin``: inspect and operate every gateway's state.

Platform teams ask four questions of the store — what is each gateway doing (``gateways``,
``show``), what happened (``history``), what is scheduled (``schedule``), what does the machine
look like (``graph``) — and take five actions (``renew``, ``retry``, ``pause``, ``resume``,
``cancel``). The commands are thin: queries and actions live in ``bifrost.admin`` and the
engine, so the tool reads through the same repositories as the controller and acts through the
engine's own operator actions, never around them.

It opens the store from the controller's own settings (``BIFROST_DATABASE_URL`` /
``BIFROST_DATA_DIR``), so ``kubectl exec deploy/bifrost -- bifrost-admin gateways`` works in the
controller's pod. It never creates or migrates a database. With ``--server URL`` it asks the
controller's admin API instead (``bifrost.admin.remote``; reached with ``kubectl
port-forward``), presenting the user's own bearer token, so Kubernetes RBAC decides: the same
documents either way (both paths are an :class:`~bifrost.admin.source.AdminSource`). Expected
failures print one line on stderr and exit non-zero (1: store, server or gateway, 2: bad
input, 3: action refused, 4: the server refused the caller, 5/6: ``--wait`` saw the operation
fail / ran out of ``--timeout``; see ``bifrost.admin.errors``).

``--database-url`` and ``-o/--output`` may be given before the subcommand too, as with kubectl
(``bifrost-admin --database-url URL gateways``); the main callback keeps them in the context's
``meta`` (:data:`GLOBAL_OPTIONS`) and each command resolves its own value with
:func:`_resolved`: the subcommand's option given on the command line wins, then the global one,
then ``BIFROST_DATABASE_URL`` and the default.
"""

from __future__ import annotations

import getpass
import importlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, NoReturn, Protocol

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from bifrost.admin import queries
from bifrost.admin.errors import AdminError, BadInput, ServerUnreachable
from bifrost.admin.format import OutputFormat, format_document
from bifrost.admin.source import AdminSource, LocalAdmin
from bifrost.admin.views import ActionResult, Document
from bifrost.admin.wait import DEFAULT_INTERVAL_S, follow
from bifrost.cli.version import print_version
from bifrost.clock import Clock, SystemClock
from bifrost.machines.registry import MachineRegistry
from bifrost.settings import Settings
from bifrost.store import open_store
from bifrost.store.errors import StoreError, StoreUnavailable
from bifrost.store.interface import OperationStore
from bifrost.store.sql.backend import normalize_url

#: Where the controller's machine catalog is expected (``default_registry() -> MachineRegistry``).
CATALOG_MODULE = "bifrost.machines.catalog"
#: A PostgreSQL server that does not answer is reported after this many seconds.
PG_CONNECT_TIMEOUT_S = 5

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstrings' line breaks do not break the help's sentences
    pretty_exceptions_enable=False,
    help="Inspect and operate bifrost's gateways: what each is doing, what happened, what is "
    "scheduled; renew, retry, pause, resume, cancel.\n\n--database-url and -o/--output may be "
    "given before the subcommand (as with kubectl) or after it; when both are given, the "
    "subcommand's wins, and either wins over BIFROST_DATABASE_URL. --server and --token go "
    "before the subcommand: with --server, the controller's admin API answers instead of the "
    "database, authorizing your token with Kubernetes RBAC (docs/admin-remote.md).",
)


# --- environment ---------------------------------------------------------------------------------
def default_actor() -> str:
    """``$USER@hostname`` (the journal's actor for an operator's action)."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    if not user:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def default_registry() -> MachineRegistry:
    """The machines the controller runs, from its catalog module when it is installed."""
    try:
        module = importlib.import_module(CATALOG_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (CATALOG_MODULE, CATALOG_MODULE.rpartition(".")[0]):
            return MachineRegistry()
        raise
    factory = getattr(module, "default_registry", None)
    registry = factory() if callable(factory) else None
    return registry if isinstance(registry, MachineRegistry) else MachineRegistry()


class ClosableStore(OperationStore, Protocol):
    def close(self) -> None: ...


@dataclass
class AdminEnv:
    """What the commands depend on; tests and benchmarks pass their own as
    ``CliRunner.invoke(..., obj=AdminEnv(...))``. ``opener`` opens the store at a URL that
    ``store_url`` already checked (default ``bifrost.store.open_store``)."""

    clock: Clock = field(default_factory=SystemClock)
    registry: MachineRegistry | None = None
    sleep: Callable[[float], None] = time.sleep
    opener: Callable[[str], ClosableStore] = open_store
    #: Seconds between the polls of ``--wait``.
    wait_interval: float = DEFAULT_INTERVAL_S

    def machines(self) -> MachineRegistry:
        if self.registry is None:
            self.registry = default_registry()
        return self.registry


def _env(ctx: typer.Context) -> AdminEnv:
    obj = ctx.find_root().obj
    if not isinstance(obj, AdminEnv):
        obj = AdminEnv()
        ctx.find_root().obj = obj
    return obj


def _fail(message: str, code: int) -> NoReturn:
    typer.echo("error: " + " ".join(message.split()), err=True)
    raise typer.Exit(code)


def store_url(database_url: str | None) -> str:
    """The store URL, checked so that a read never creates a database.

    A SQLite file that does not exist is an error (``bifrost db upgrade`` creates it); a
    PostgreSQL URL gets a connect timeout unless it names one, so an unreachable server is
    reported instead of hanging.
    """
    if database_url:
        url = database_url
    else:
        try:
            url = Settings().resolved_database_url()
        except ValidationError as exc:
            problems = "; ".join(
                f"BIFROST_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise BadInput(f"invalid settings in the environment: {problems}") from None
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            if not path.is_file():
                raise AdminError(
                    f"no bifrost database at {path}: run `bifrost db upgrade` (with the same "
                    "--database-url / BIFROST_DATABASE_URL / BIFROST_DATA_DIR) first"
                )
    elif backend == "postgresql" and "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
        url = parsed.render_as_string(hide_password=False)
    return url


@contextmanager
def _guarded() -> Iterator[None]:
    """Expected failures → one line on stderr and an exit code; never a traceback."""
    try:
        yield
    except AdminError as exc:
        _fail(str(exc), exc.exit_code)
    except StoreError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@contextmanager
def _store(env: AdminEnv, database_url: str | None) -> Iterator[OperationStore]:
    opened = env.opener(store_url(database_url))
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _source(
    ctx: typer.Context, env: AdminEnv, database_url: str | None
) -> Iterator[AdminSource]:
    """The admin API of ``--server`` when one was given, else the store."""
    given: dict[str, object] = ctx.meta.get(GLOBAL_OPTIONS) or {}
    server = given.get("server")
    if isinstance(server, str) and server:
        from bifrost.admin.remote import RemoteAdmin, kubeconfig_token

        source = ctx.get_parameter_source("database_url")
        if "database_url" in given or (source is not None and source.name == "COMMANDLINE"):
            raise BadInput("give --server or --database-url, not both")

        token = given.get("token")
        yield RemoteAdmin(server, token if isinstance(token, str) and token
                          else kubeconfig_token())
        return
    with _store(env, database_url) as store:
        yield LocalAdmin(store, clock=env.clock, registry=env.machines(), actor=default_actor())


def _remote(ctx: typer.Context) -> bool:
    given: dict[str, object] = ctx.meta.get(GLOBAL_OPTIONS) or {}
    return bool(given.get("server"))


def _emit(doc: Document, output: OutputFormat) -> None:
    typer.echo(format_document(doc, output))


#: ``ctx.meta`` key of the options given before the subcommand (see :func:`main`).
GLOBAL_OPTIONS = "bifrost_admin.global_options"


def _resolved(ctx: typer.Context, name: str, value: object) -> object:
    """The value of the subcommand's option ``name``: the subcommand's own, when given on its
    command line, else the one given before the subcommand, else its own (environment or
    default)."""
    given: dict[str, object] = ctx.meta.get(GLOBAL_OPTIONS) or {}
    if name not in given:
        return value
    source = ctx.get_parameter_source(name)
    if source is not None and source.name == "COMMANDLINE":
        return value
    return given[name]


def _database_url(ctx: typer.Context, value: str | None) -> str | None:
    resolved = _resolved(ctx, "database_url", value)
    return resolved if isinstance(resolved, str) else value


def _output(ctx: typer.Context, value: OutputFormat) -> OutputFormat:
    resolved = _resolved(ctx, "output", value)
    return resolved if isinstance(resolved, OutputFormat) else value


def _watch(
    env: AdminEnv,
    build: Callable[[], Document],
    output: OutputFormat,
    *,
    interval: float,
    count: int | None,
    title: str,
) -> None:
    """Redraw ``build()`` every ``interval`` seconds until interrupted (or ``count`` frames).

    On a terminal the table is refreshed in place (rich ``Live``); elsewhere (a pipe, a log)
    each frame is printed after the previous one — JSON as one compact document per line.
    """
    if interval <= 0:
        raise BadInput(f"--interval must be positive, got {interval}")
    console = Console(file=sys.stdout)
    drawn = False

    def frame() -> str:
        nonlocal drawn
        stamp = env.clock.now().strftime("%Y-%m-%d %H:%M:%SZ")
        header = f"Every {interval:g}s: {title}    {stamp}\n\n"
        try:
            doc = build()
        except (StoreUnavailable, ServerUnreachable) as exc:
            if not drawn:
                raise
            # A locked or restarting database must not end a watch: say so and try again.
            message = f"store unavailable, trying again in {interval:g}s: {exc}"
            if output is OutputFormat.TABLE:
                return header + message
            typer.echo("error: " + " ".join(message.split()), err=True)
            return ""
        drawn = True
        if output is OutputFormat.TABLE:
            return header + format_document(doc, output)
        if output is OutputFormat.JSON:
            return format_document(doc, output, compact=True)
        return "---\n" + format_document(doc, output)

    def text() -> Text:  # cropped at the terminal's width, like watch(1)
        return Text(frame(), no_wrap=True, overflow="crop")

    try:
        _frames(env, console, text, frame, output, interval=interval, count=count)
    except KeyboardInterrupt:  # the way to stop watching: not an error
        return


def _frames(
    env: AdminEnv,
    console: Console,
    text: Callable[[], Text],
    frame: Callable[[], str],
    output: OutputFormat,
    *,
    interval: float,
    count: int | None,
) -> None:
    from rich.live import Live

    shown = 0
    if console.is_terminal and output is OutputFormat.TABLE:
        with Live(text(), console=console, auto_refresh=False, screen=False) as live:
            shown = 1
            while count is None or shown < count:
                env.sleep(interval)
                live.update(text(), refresh=True)
                shown += 1
        return
    while count is None or shown < count:
        if shown:
            env.sleep(interval)
            if output is OutputFormat.TABLE:
                typer.echo("")
        drawn_frame = frame()
        if drawn_frame:
            typer.echo(drawn_frame)
        sys.stdout.flush()
        shown += 1


# --- options -------------------------------------------------------------------------------------
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="BIFROST_DATABASE_URL",
        help="SQLAlchemy URL of the store (default: the controller's settings, SQLite under "
        "BIFROST_DATA_DIR).",
        show_default=False,
    ),
]
Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table, json or yaml (JSON fields: docs/admin-json.md)."),
]
Watch = Annotated[bool, typer.Option("--watch", "-w", help="Refresh until interrupted.")]
Interval = Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")]
WatchCount = Annotated[
    int | None, typer.Option("--watch-count", hidden=True, help="Stop after N frames (tests).")
]
GatewayArg = Annotated[str, typer.Argument(metavar="NAMESPACE/NAME", help="The Gateway.")]
OperationOpt = Annotated[
    int | None,
    typer.Option("--operation", help="The operation id (default: the one the action applies to)."),
]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who acts, recorded in the journal (default: $USER@hostname).",
        show_default=False,
    ),
]


# --- read commands -------------------------------------------------------------------------------
@app.command()
def gateways(
    ctx: typer.Context,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    gateway_class: Annotated[str | None, typer.Option("--class", help="GatewayClass.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Lifecycle state: pending, provisioning, ready, rotating, "
                     "degraded, failed, deleting or deleted."),
    ] = None,
    output: Output = OutputFormat.TABLE,
    watch: Watch = False,
    interval: Interval = 2.0,
    watch_count: WatchCount = None,
    database_url: DatabaseUrl = None,
) -> None:
    """One row per gateway: lifecycle state, operation and step in flight (and for how long),
    earliest certificate expiry, next renewal, last error."""
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded(), _source(ctx, env, database_url) as source:

        def build() -> Document:
            return source.gateways(
                namespace=namespace, gateway_class=gateway_class, state=state
            )

        if watch:
            _watch(
                env,
                build,
                output,
                interval=interval,
                count=watch_count,
                title="bifrost-admin gateways",
            )
        else:
            _emit(build(), output)


@app.command()
def show(
    ctx: typer.Context,
    gateway: GatewayArg,
    journal: Annotated[int, typer.Option("--journal", help="Recent journal entries shown.")] = 20,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", help="Also show the live Gateway from this cluster.", show_default=False
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="kubeconfig context (with --kubeconfig).")
    ] = None,
    output: Output = OutputFormat.TABLE,
    watch: Watch = False,
    interval: Interval = 2.0,
    watch_count: WatchCount = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A gateway in full: children and their readiness, certificates, the operation in flight
    with its context, recent operations and journal; with --kubeconfig, the live Gateway's
    conditions, listeners and addresses beside them."""
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded():
        namespace, name = queries.parse_ref(gateway)
        if journal < 1:
            raise BadInput(f"--journal must be at least 1, got {journal}")
        with _source(ctx, env, database_url) as source:

            def build() -> Document:
                detail = source.show(gateway, journal=journal)
                if kubeconfig is None:
                    return detail
                from bifrost.admin.live import read_live

                live = read_live(
                    kubeconfig,
                    context=context,
                    namespace=namespace,
                    name=name,
                    store_uid=detail.gateway.uid,
                )
                return detail.model_copy(update={"live": live})

            if watch:
                _watch(
                    env,
                    build,
                    output,
                    interval=interval,
                    count=watch_count,
                    title=f"bifrost-admin show {gateway}",
                )
            else:
                _emit(build(), output)


@app.command()
def history(
    ctx: typer.Context,
    gateway: GatewayArg,
    limit: Annotated[int, typer.Option("--limit", help="Newest timeline entries shown.")] = 100,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """A gateway's timeline: its operations, and each step attempt with its duration, outcome
    and message (oldest first)."""
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded():
        queries.parse_ref(gateway)
        if limit < 1:
            raise BadInput(f"--limit must be at least 1, got {limit}")
        with _source(ctx, env, database_url) as source:
            _emit(source.history(gateway, limit=limit), output)


@app.command()
def schedule(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="Renewals shown.")] = 100,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Upcoming certificate renewals, soonest first (overdue ones at the top)."""
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded():
        if limit < 1:
            raise BadInput(f"--limit must be at least 1, got {limit}")
        with _source(ctx, env, database_url) as source:
            _emit(source.schedule(limit=limit), output)


@app.command()
def graph(
    ctx: typer.Context,
    machine: Annotated[str, typer.Argument(help="Machine name (e.g. provision).")],
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway", metavar="NAMESPACE/NAME", help="Highlight this gateway's current state."
        ),
    ] = None,
    version: Annotated[int | None, typer.Option("--version", help="Machine version.")] = None,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """The machine as a Mermaid state diagram (for any Mermaid viewer); with --gateway, that
    gateway's current state is highlighted."""
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded():
        if gateway is None and not _remote(ctx):  # the code's machine: no store needed
            doc, note = queries.graph(
                None, env.machines(), machine, now=env.clock.now(), version=version
            )
        else:
            if gateway is not None:
                queries.parse_ref(gateway)
            if not _remote(ctx):
                queries.machine_spec(env.machines(), machine, version)
            with _source(ctx, env, database_url) as source:
                doc, note = source.graph(machine, gateway=gateway, version=version)
        if note:
            typer.echo(f"note: {note}", err=True)
        _emit(doc, output)


# --- actions -------------------------------------------------------------------------------------
TargetArg = Annotated[
    str,
    typer.Argument(metavar="NAMESPACE/NAME|OPERATION", help="The Gateway, or an operation id."),
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Follow the operation to its end, a line each time its state or step changes; "
        "exit 0 when it succeeds, 5 when it fails or is cancelled, 6 at --timeout.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds --wait waits before giving up (exit 6; the operation goes on). "
        "Default: no limit.",
        show_default=False,
    ),
]


def _act(
    ctx: typer.Context,
    database_url: str | None,
    gateway: str,
    output: OutputFormat,
    run: Callable[[AdminSource], ActionResult],
    *,
    wait: bool = False,
    timeout: float | None = None,
) -> None:
    env = _env(ctx)
    database_url, output = _database_url(ctx, database_url), _output(ctx, output)
    with _guarded():
        if not gateway.isdigit():
            queries.parse_ref(gateway)
        if timeout is not None and (not wait or timeout <= 0):
            raise BadInput(f"--timeout needs --wait and a positive number, got {timeout:g}"
                           + ("" if wait else " without --wait"))
        with _source(ctx, env, database_url) as source:
            result = run(source)
            _emit(result, output)
            if wait:
                _follow(env, source, result, output, timeout)


def _follow(
    env: AdminEnv,
    source: AdminSource,
    result: ActionResult,
    output: OutputFormat,
    timeout: float | None,
) -> None:
    """``--wait``: progress on stdout under a table, on stderr under JSON/YAML (whose stdout
    stays one document)."""
    to_stderr = output is not OutputFormat.TABLE

    def show(line: str) -> None:
        typer.echo(line, err=to_stderr)
        sys.stdout.flush()

    if result.operation_id is None:
        typer.echo("note: no operation was started, so --wait has nothing to follow", err=True)
        return
    operation_id = result.operation_id
    follow(
        lambda: source.operation(operation_id),
        clock=env.clock,
        sleep=env.sleep,
        show=show,
        timeout=timeout,
        interval=env.wait_interval,
    )


def _engine_action(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        gateway: TargetArg,
        operation: OperationOpt = None,
        actor: ActorOpt = None,
        output: Output = OutputFormat.TABLE,
        database_url: DatabaseUrl = None,
    ) -> None:
        _act(
            ctx,
            database_url,
            gateway,
            output,
            lambda source: source.act(
                verb, gateway, operation=operation, reason="", compensate=True, actor=actor
            ),
        )

    return command


def _engine_action_with_reason(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        gateway: TargetArg,
        operation: OperationOpt = None,
        reason: Annotated[str, typer.Option("--reason", help="Why, for the journal.")] = "",
        actor: ActorOpt = None,
        output: Output = OutputFormat.TABLE,
        database_url: DatabaseUrl = None,
    ) -> None:
        _act(
            ctx,
            database_url,
            gateway,
            output,
            lambda source: source.act(
                verb, gateway, operation=operation, reason=reason, compensate=True, actor=actor
            ),
        )

    return command


app.command(
    "pause",
    help="Pause the gateway's active operation: the engine stops claiming it (a step in flight "
    "is fenced off and re-runs after resume).",
)(_engine_action_with_reason("pause"))
app.command(
    "resume", help="Resume the gateway's paused operation now, at the step where it stopped."
)(_engine_action("resume"))


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    gateway: TargetArg,
    operation: OperationOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the journal.")] = "",
    compensate: Annotated[
        bool,
        typer.Option(
            "--compensate/--no-compensate",
            help="Run the machine's compensation for the state the operation is in (a "
            "rotation before its old certificate left: detach and delete the new one), as "
            "journaled steps of the operation; --no-compensate ends it where it stands.",
        ),
    ] = True,
    actor: ActorOpt = None,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel the gateway's active or paused operation. By default the machine's compensation
    runs first (the operation stays active until it is done, then ends cancelled); a state with
    none, or --no-compensate, ends the operation where it stands and frees the lane."""
    _act(
        ctx,
        database_url,
        gateway,
        output,
        lambda source: source.act(
            "cancel", gateway, operation=operation, reason=reason, compensate=compensate,
            actor=actor,
        ),
    )


@app.command("retry")
def retry(
    ctx: typer.Context,
    gateway: TargetArg,
    operation: OperationOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-run the failed step of the gateway's failed operation, now; with --wait, follow it
    to its end."""
    _act(
        ctx,
        database_url,
        gateway,
        output,
        lambda source: source.act(
            "retry", gateway, operation=operation, reason="", compensate=True, actor=actor
        ),
        wait=wait,
        timeout=timeout,
    )


@app.command()
def renew(
    ctx: typer.Context,
    gateway: GatewayArg,
    listener: Annotated[
        str | None, typer.Option("--listener", help="Only this listener's certificate.")
    ] = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    output: Output = OutputFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Renew the gateway's attached certificates now: start a rotation when this bifrost has
    the rotation machine, else mark them due now for the renewal scheduler; with --wait, follow
    the rotation to its end."""
    _act(
        ctx,
        database_url,
        gateway,
        output,
        lambda source: source.renew(gateway, listener=listener, actor=actor),
        wait=wait,
        timeout=timeout,
    )


@app.callback()
def main(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL of the store, for every subcommand (as if given after it). "
            "A subcommand's own --database-url wins over this one; this one wins over "
            "BIFROST_DATABASE_URL.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--output", "-o",
            help="table, json or yaml, for every subcommand; a subcommand's own -o wins.",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="BIFROST_ADMIN_SERVER",
            help="Ask the controller's admin API at this URL instead of the database (e.g. "
            "http://127.0.0.1:8082 with `kubectl -n bifrost-system port-forward deploy/bifrost "
            "8082`); Kubernetes RBAC authorizes your token (docs/admin-remote.md).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="BIFROST_ADMIN_TOKEN",
            help="Bearer token for --server (default: the current context of $KUBECONFIG or "
            "~/.kube/config).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[bool, print_version("bifrost-admin")] = False,
) -> None:
    """Inspect and operate gateways (the options before the subcommand: see the app's help)."""
    given: dict[str, object] = {}
    if database_url is not None:
        given["database_url"] = database_url
    if output is not None:
        given["output"] = output
    if server:
        given["server"] = server
    if token:
        given["token"] = token
    ctx.meta[GLOBAL_OPTIONS] = given


if __name__ == "__main__":  # pragma: no cover
    app()
