"""``bifrost dev``: run the local devcluster (and its simulated peers) and the bifrost controller
until interrupted.

No real cluster can run on a developer laptop or in CI here, yet bifrost must be developed, demoed
and benchmarked against something that behaves like one. ``bifrost dev`` starts the emulated API
server on loopback with the real Gateway API and cert-manager CRDs (the bundle bifrost ships,
``devcluster/crds/``), bifrost's own CRDs (``deploy/crds``) and any ``--crds``
directories, registers the Crossplane-like load balancer kind permissively, starts the simulated
peers (issuer, load balancer, TLS data plane) as ordinary API clients, writes a kubeconfig that
``kubectl`` and the official client can use and prints one line saying where. Then it runs the
controller — ``bifrost run``'s, in-process, with the default store (SQLite under
``BIFROST_DATA_DIR`` unless ``--database-url``/``BIFROST_DATABASE_URL``) — unless
``--no-controller``, and runs until SIGINT/SIGTERM, when it stops the controller (releasing its
Lease), then the peers and the cluster.

``--kubelet`` makes the devcluster run Pods of image ``bifrost:*`` as real local processes (its
local kubelet, :mod:`devcluster.localpods`) with this environment's ``bifrost`` executable, the
way ``deploy/Dockerfile``'s ENTRYPOINT/CMD/ENV run it in a container: applying the install
manifest (``dist/install.yaml``) then runs the controller as the cluster's own Deployment, under
its ServiceAccount and RBAC. The in-process controller is then off unless ``--controller``.
``--image PATTERN=COMMAND`` maps other images (or overrides the default one).
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from bifrost.shipped import shipped
from devcluster.bundle import upstream_crd_dirs

if TYPE_CHECKING:
    from devcluster.localpods import ImageCommand, LocalPodOptions
    from devcluster.server import DevCluster

__all__ = [
    "BIFROST_IMAGE",
    "bifrost_executable",
    "bifrost_image_command",
    "default_crd_dirs",
    "devcluster_running",
    "local_pod_options",
    "parse_image_mapping",
    "register",
    "register_child_kinds",
    "run_dev",
]

#: The image pattern the local kubelet runs with this environment's ``bifrost``.
BIFROST_IMAGE = "bifrost:*"
#: deploy/Dockerfile's CMD and ENV (HOME: the image's user has no home directory of its own).
_IMAGE_CMD = ("run", "--health-port", "8080")
_IMAGE_ENV = {"HOME": "/tmp", "PYTHONUNBUFFERED": "1", "BIFROST_DATA_DIR": "/var/lib/bifrost",
              "PYTHONDONTWRITEBYTECODE": "1"}
#: The base image's PATH, after which the Dockerfile puts the venv's bin/.
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def bifrost_executable() -> Path:
    """This environment's ``bifrost`` script: beside the running interpreter (a venv's
    ``bin/``), else the first on ``PATH``. Raises :class:`FileNotFoundError` naming both."""
    beside = Path(sys.executable).parent / "bifrost"
    if beside.is_file():
        return beside
    found = shutil.which("bifrost")
    if found is None:
        raise FileNotFoundError(
            f"no bifrost executable for the local kubelet: not at {beside} nor on PATH; "
            "install bifrost into this environment or pass --image 'bifrost:*=COMMAND'"
        )
    return Path(found)


def bifrost_image_command(entrypoint: tuple[str, ...] | None = None) -> ImageCommand:
    """``bifrost:*`` as deploy/Dockerfile builds it: ENTRYPOINT ``bifrost`` (this environment's,
    or ``entrypoint``), CMD ``run --health-port 8080``, its ENV."""
    from devcluster.localpods import ImageCommand

    entrypoint = entrypoint or (str(bifrost_executable()),)
    # The image's PATH starts with its venv's bin/ (``kubectl exec … -- bifrost db vacuum``).
    first = Path(entrypoint[0])
    env = {**_IMAGE_ENV, "PATH": (f"{first.parent}:{_DEFAULT_PATH}" if first.is_absolute()
                                  else _DEFAULT_PATH)}
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return ImageCommand(
        pattern=BIFROST_IMAGE,
        entrypoint=entrypoint,
        cmd=_IMAGE_CMD,
        env=env,
        paths=image_paths(),
    )


def image_paths() -> tuple[str, ...]:
    """What the ``bifrost:*`` image's files are here: this environment (``sys.prefix``), the
    interpreter it was made from and the folder bifrost is imported from (a checkout, for an
    editable install). They must stay visible in the Pod's sandbox even where they lie under a
    volume's mount path such as ``/tmp`` (a CI checkout, a venv in a temporary directory)."""
    import bifrost

    paths = (sys.prefix, sys.base_prefix, Path(bifrost.__file__).parents[1])
    return tuple(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def sandbox_available() -> bool:
    """Whether the local kubelet can sandbox Pods here (a working bubblewrap): without it a
    Pod's volumes are not mounted at their paths (no ServiceAccount token for bifrost)."""
    from devcluster.localpods.sandbox import find_bwrap

    return find_bwrap() is not None


def parse_image_mapping(text: str) -> ImageCommand:
    """``--image PATTERN=COMMAND``: Pods whose image matches ``PATTERN`` (fnmatch) run
    ``COMMAND`` (split like a shell, the image's ENTRYPOINT; the container's ``args`` follow
    it). ``bifrost:*`` keeps the Dockerfile's CMD and ENV; other patterns get the same ENV and
    no CMD. Raises :class:`typer.BadParameter` on a malformed value."""
    from devcluster.localpods import ImageCommand

    pattern, sep, command = text.partition("=")
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint="--image") from None
    if not sep or not pattern.strip() or not argv:
        raise typer.BadParameter(
            f"{text!r} is not PATTERN=COMMAND (e.g. 'bifrost:*=/opt/venv/bin/bifrost')",
            param_hint="--image",
        )
    if pattern.strip() == BIFROST_IMAGE:
        return bifrost_image_command(argv)
    return ImageCommand(pattern=pattern.strip(), entrypoint=argv, env=dict(_IMAGE_ENV))


def local_pod_options(
    root: Path, images: list[ImageCommand] | None = None, *, sandbox: str = "auto"
) -> LocalPodOptions:
    """The local kubelet's options: ``images`` (overrides first; ``bifrost:*`` mapped to this
    environment's ``bifrost`` unless an override has that pattern), per-pod dirs under
    ``root``."""
    from devcluster.localpods import LocalPodOptions

    mapped = list(images or [])
    if not any(i.pattern == BIFROST_IMAGE for i in mapped):
        mapped.append(bifrost_image_command())
    return LocalPodOptions(images=tuple(mapped), root=root, sandbox=sandbox)


def install_manifest_hint(kubeconfig: Path) -> str:
    """The command that installs bifrost into the devcluster from the shipped manifest."""
    return f"kubectl --kubeconfig {kubeconfig} apply -f {shipped('dist/install.yaml')}"

#: The repository root (``bifrost/cli/dev.py`` → two levels up from the package).
LB_KIND = ("elbv2.aws.upbound.io", "v1beta1", "LB", "lbs")


def register_child_kinds(cluster: DevCluster) -> None:
    """Serve the cloud children's kinds permissively and cluster-scoped, as Crossplane's managed
    resources are: the load balancer (``LB_KIND``) and the kinds of the Crossplane-like peer
    (listener, listener certificate, ACM certificate, Route 53 record, security group and rule,
    WAF association — ``devcluster.peers.crossplane.DEFAULT_MANAGED_KINDS``)."""
    from devcluster.peers.crossplane import DEFAULT_MANAGED_KINDS

    kinds = [LB_KIND, *((k.group, k.version, k.kind, k.plural) for k in DEFAULT_MANAGED_KINDS)]
    for group, version, kind, plural in kinds:
        cluster.register_permissive(
            group=group, version=version, kind=kind, plural=plural, namespaced=False
        )


def default_crd_dirs() -> list[Path]:
    """The Gateway API v1.6.1 and cert-manager CRD directories bifrost ships
    (:mod:`bifrost.shipped`)."""
    return [d for d in upstream_crd_dirs() if d.is_dir()]


def _crd_files(dirs: list[Path]) -> list[Path]:
    """The YAML files directly in each directory (not recursive: skips e.g. ``conformance/``)."""
    files: list[Path] = []
    for d in dirs:
        if d.is_file():
            files.append(d)
            continue
        if not d.is_dir():
            raise typer.BadParameter(f"{d} is not a directory", param_hint="--crds")
        files.extend(sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml")))
    return files


@contextmanager
def devcluster_running(
    kubeconfig_out: Path,
    *,
    port: int = 0,
    crds: list[Path] | None = None,
    state_file: Path | None = None,
    default_crds: bool = True,
    peers: bool = True,
    dataplane: bool = True,
    issuance_delay: float = 0.0,
    failure_rate: float = 0.0,
    seed: int = 0,
    cert_lifetime: timedelta = timedelta(days=90),
    child_gateway_classes: list[str] | None = None,
    local_pods: LocalPodOptions | None = None,
) -> Iterator[DevCluster]:
    """Start the devcluster and its peers and write the kubeconfig; stop both on exit.
    ``local_pods``: the local kubelet's options (default: every Pod is simulated)."""
    from devcluster.peers import IssuerOptions, LoadBalancerOptions, Peers
    from devcluster.peers.loadbalancer import DEFAULT_CHILD_GATEWAY_CLASSES
    from devcluster.server import DevCluster

    crd_dirs = (default_crd_dirs() if default_crds else []) + list(crds or [])
    cluster = DevCluster(
        crd_paths=_crd_files(crd_dirs),
        port=port,
        state_file=state_file,
        local_pods=local_pods,
    )
    cluster.start()
    running: Peers | None = None
    try:
        register_child_kinds(cluster)
        kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
        cluster.write_kubeconfig(kubeconfig_out)
        if peers:
            state_dir = str(state_file.with_name(state_file.name + ".ca")) if state_file else None
            running = Peers(
                kubeconfig_out,
                issuer_options=IssuerOptions(
                    default_lifetime=cert_lifetime,
                    issuance_delay=issuance_delay,
                    failure_rate=failure_rate,
                    seed=seed,
                    state_dir=state_dir,
                ),
                lb_options=LoadBalancerOptions(
                    child_gateway_classes=frozenset(child_gateway_classes)
                    if child_gateway_classes
                    else DEFAULT_CHILD_GATEWAY_CLASSES
                ),
                dataplane=dataplane,
            ).start()
        yield cluster
    finally:
        if running is not None:
            running.stop()
        cluster.stop()


def run_dev(
    kubeconfig_out: Path,
    *,
    port: int = 0,
    crds: list[Path] | None = None,
    state_file: Path | None = None,
    default_crds: bool = True,
    peers: bool = True,
    dataplane: bool = True,
    issuance_delay: float = 0.0,
    failure_rate: float = 0.0,
    seed: int = 0,
    cert_lifetime: timedelta = timedelta(days=90),
    child_gateway_classes: list[str] | None = None,
    stop: threading.Event | None = None,
    controller: bool | None = None,
    database_url: str | None = None,
    kubelet: bool = False,
    images: list[ImageCommand] | None = None,
    pods_root: Path | None = None,
) -> None:
    """Start the devcluster and peers, write the kubeconfig, run the bifrost controller against
    it (unless ``controller`` is false) and block until ``stop`` is set.

    The controller is ``bifrost run``'s (:func:`bifrost.cli.run.run_controller`), in-process on
    a thread, with the store at ``database_url`` (default: ``BIFROST_DATABASE_URL``, else SQLite
    under ``BIFROST_DATA_DIR`` — the store every ``bifrost``/``bifrost-admin`` command opens by
    default), migrated on start. bifrost's own CRDs (``deploy/crds``) are loaded with the
    default CRDs. Start-up failures of the controller raise
    :class:`bifrost.cli.run.RunError`; the devcluster is stopped first.

    ``kubelet``: Pods of image ``bifrost:*`` (and ``images``) run as local processes, with
    per-pod directories under ``pods_root`` (default: ``<state_file>.pods/`` beside a state
    file, else a temporary directory removed on exit); ``controller`` then defaults to false
    (the install manifest's Deployment is the controller) and bifrost's own CRDs are left to
    the manifest.
    """
    from bifrost.cli.run import RunError, run_controller
    from bifrost.kube import KubeClient
    from bifrost.settings import Settings

    stop = stop or threading.Event()
    if controller is None:
        controller = not kubelet
    crd_dirs = list(crds or [])
    if default_crds and (controller or not kubelet):
        # bifrost's own CRDs; with the kubelet and no in-process controller the install
        # manifest brings them (kubectl apply would warn about objects it did not create)
        crd_dirs.append(shipped("deploy/crds"))
    settings = Settings()
    url = database_url or settings.resolved_database_url()
    if controller and database_url is None and url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    failure: list[BaseException] = []
    with _pods_root(kubelet, pods_root, state_file) as root, devcluster_running(
        kubeconfig_out,
        port=port,
        crds=crd_dirs,
        state_file=state_file,
        default_crds=default_crds,
        peers=peers,
        dataplane=dataplane,
        issuance_delay=issuance_delay,
        failure_rate=failure_rate,
        seed=seed,
        cert_lifetime=cert_lifetime,
        child_gateway_classes=child_gateway_classes,
        local_pods=local_pod_options(root, images) if root is not None else None,
    ) as cluster:
        print(
            f"devcluster at {cluster.url}: kubeconfig written to {kubeconfig_out} "
            f"(kubectl --kubeconfig {kubeconfig_out} get namespaces); Ctrl-C stops it",
            flush=True,
        )
        if kubelet:
            print(f"local kubelet on (pods under {root}): install bifrost into the devcluster "
                  f"with `{install_manifest_hint(kubeconfig_out)}`", flush=True)
            if not sandbox_available():
                print("warning: no working bubblewrap: Pods run unsandboxed, their volumes (the "
                      "ServiceAccount token, /var/lib/bifrost) are not mounted and bifrost's "
                      "Pod cannot start; pip install 'bifrost-gateway[kubelet]'", flush=True)
        thread: threading.Thread | None = None
        if controller:
            # Where in-cluster installs put the controller (deploy/): class-wide
            # GatewayClassConfigs live here.
            kube = KubeClient.from_kubeconfig(kubeconfig_out)
            try:
                kube.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "bifrost-system"}})
            finally:
                kube.close()

            def started() -> None:
                print(
                    f"controller running against the devcluster (store {url.split('@')[-1]}; "
                    "bifrost-admin gateways shows what it does)",
                    flush=True,
                )

            def run() -> None:
                try:
                    run_controller(stop=stop, kubeconfig=kubeconfig_out, database_url=url,
                                   lease_duration=5.0, on_started=started)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    failure.append(exc)
                    stop.set()

            thread = threading.Thread(target=run, name="controller", daemon=True)
            thread.start()
        elif not kubelet:
            print("controller not started (--no-controller): run `bifrost run --kubeconfig "
                  f"{kubeconfig_out}` beside it", flush=True)
        while not stop.wait(0.5):  # short waits keep signal handling prompt
            pass
        if thread is not None:
            thread.join(30)  # the controller releases its Lease before the cluster goes
            if thread.is_alive():
                raise RunError("the controller did not stop within 30s")
    if failure:
        raise failure[0]


@contextmanager
def _pods_root(kubelet: bool, pods_root: Path | None, state_file: Path | None
               ) -> Iterator[Path | None]:
    """Where the local kubelet keeps its per-pod directories (None: no kubelet). Beside a
    state file they outlive the run, as the cluster's objects do; else a temporary directory."""
    if not kubelet:
        yield None
        return
    if pods_root is None and state_file is not None:
        pods_root = state_file.with_name(state_file.name + ".pods")
    if pods_root is not None:
        pods_root.mkdir(parents=True, exist_ok=True)
        yield pods_root
        return
    with tempfile.TemporaryDirectory(prefix="bifrost-dev-pods-") as tmp:
        yield Path(tmp)


def _log_level(value: str) -> str:
    from bifrost.cli.run import parse_log_level

    return parse_log_level(value)


def _log_format(value: str | None) -> str:
    from bifrost.cli.run import check_log_format

    return check_log_format(value)


def register(app: typer.Typer) -> None:
    """Add the devcluster commands to the ``bifrost`` app."""

    @app.command("dev")
    def dev(
        kubeconfig_out: Annotated[
            Path, typer.Option("--kubeconfig-out", help="Where to write the kubeconfig.")
        ],
        port: Annotated[
            int, typer.Option("--port", help="API server port on 127.0.0.1 (0: any free port).")
        ] = 0,
        crds: Annotated[
            list[Path] | None,
            typer.Option(
                "--crds",
                help="Extra directory (or file) of CRD YAML to load; repeatable. The Gateway API "
                "and cert-manager CRDs bifrost ships are always loaded.",
            ),
        ] = None,
        no_default_crds: Annotated[
            bool, typer.Option("--no-default-crds", help="Do not load the shipped CRDs.")
        ] = False,
        controller: Annotated[
            bool | None,
            typer.Option(
                "--controller/--no-controller",
                help="Start the bifrost controller in-process, or not (e.g. to run `bifrost run` "
                "against the devcluster as its own process). Default: started, unless "
                "--kubelet.",
                show_default=False,
            ),
        ] = None,
        kubelet: Annotated[
            bool,
            typer.Option(
                "--kubelet",
                help="Run Pods of image bifrost:* as local processes with this environment's "
                "bifrost (as deploy/Dockerfile runs it), so `kubectl apply -f "
                "dist/install.yaml` runs the controller as the cluster's Deployment under its "
                "ServiceAccount. The in-process controller is then off unless --controller.",
            ),
        ] = False,
        image: Annotated[
            list[str] | None,
            typer.Option(
                "--image",
                metavar="PATTERN=COMMAND",
                help="With --kubelet: Pods whose image matches PATTERN (fnmatch) run COMMAND "
                "(split like a shell; the container's args follow it); repeatable. "
                "'bifrost:*=PATH' replaces the bifrost executable.",
            ),
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                envvar="BIFROST_DATABASE_URL",
                help="The controller's store (default: SQLite in BIFROST_DATA_DIR, else "
                "~/.local/state/bifrost).",
            ),
        ] = None,
        log_level: Annotated[
            str,
            typer.Option("--log-level", callback=_log_level,
                         help="Log level of the controller's log (stderr): DEBUG, INFO, "
                         "WARNING, ERROR or CRITICAL."),
        ] = "INFO",
        log_format: Annotated[
            str | None,
            typer.Option("--log-format", envvar="BIFROST_LOG_FORMAT", callback=_log_format,
                         help="Log lines as json (one object a line) or text. Default: json "
                         "in a pod ($KUBERNETES_SERVICE_HOST set), else text."),
        ] = None,
        state_file: Annotated[
            Path | None,
            typer.Option(
                "--state-file",
                help="Persist the cluster's objects here (and the local CA beside it, in "
                "<state-file>.ca/) so a restart keeps them.",
            ),
        ] = None,
        no_peers: Annotated[
            bool, typer.Option("--no-peers", help="Run the API server without simulated peers.")
        ] = False,
        no_dataplane: Annotated[
            bool, typer.Option("--no-dataplane", help="Do not start the TLS data plane.")
        ] = False,
        issuance_delay: Annotated[
            float, typer.Option(help="Seconds the simulated issuer waits before issuing.")
        ] = 0.0,
        failure_rate: Annotated[
            float, typer.Option(help="Probability in [0, 1] that an issuance attempt fails.")
        ] = 0.0,
        seed: Annotated[int, typer.Option(help="Seed of the issuer's failure draws.")] = 0,
        cert_lifetime_hours: Annotated[
            float,
            typer.Option(help="Default certificate lifetime (spec.duration wins), in hours."),
        ] = 90 * 24.0,
        child_gateway_class: Annotated[
            list[str] | None,
            typer.Option(
                "--child-gateway-class",
                help="gatewayClassName of child Gateways the load balancer serves; repeatable "
                "(default: istio, devcluster).",
            ),
        ] = None,
    ) -> None:
        """Run a local Kubernetes-compatible API server with simulated peers and the bifrost
        controller until interrupted."""
        import logging

        from bifrost.cli.logs import log_handler, quiet_third_parties
        from bifrost.cli.run import RunError

        if image and not kubelet:
            raise typer.BadParameter("--image needs --kubelet", param_hint="--image")
        images = [parse_image_mapping(i) for i in image or []]
        root = logging.getLogger()
        level = root.level
        root.setLevel(log_level.upper())
        handler = log_handler(log_format or "text", sys.stderr)
        root.addHandler(handler)
        # transitions logs every state callback at INFO (noise next to the journal), alembic
        # narrates the migration on every start, APScheduler each run of its jobs.
        quiet_third_parties()
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        try:
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            try:
                run_dev(
                    kubeconfig_out,
                    port=port,
                    crds=crds,
                    state_file=state_file,
                    default_crds=not no_default_crds,
                    peers=not no_peers,
                    dataplane=not no_dataplane,
                    issuance_delay=issuance_delay,
                    failure_rate=failure_rate,
                    seed=seed,
                    cert_lifetime=timedelta(hours=cert_lifetime_hours),
                    child_gateway_classes=child_gateway_class,
                    stop=stop,
                    controller=controller,
                    database_url=database_url,
                    kubelet=kubelet,
                    images=images,
                )
            except (RunError, ValueError, OSError) as exc:
                print("bifrost dev: " + " ".join(str(exc).split()), file=sys.stderr)
                raise typer.Exit(1) from None
        finally:
            # the process may go on (an in-process caller, a test): leave logging as found
            root.removeHandler(handler)
            root.setLevel(level)
        print("devcluster stopped", flush=True)
