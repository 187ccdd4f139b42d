"""The console scripts ``bifrost`` and ``bifrost-admin``: each runs its typer app and turns every
failure into one line on stderr and a documented exit code — never a traceback.

The commands handle their expected failures themselves (``bifrost run: …``, ``error: …``); this is
the net under all of them, so a path nobody thought of still ends in one line:

====  =========================================================================================
code  meaning
====  =========================================================================================
0     done
1     a failure of what the command works with: the store (missing, corrupt, locked, unreachable,
      a schema newer than this code), the cluster (unreachable, no kubeconfig, CRDs missing),
      the demo's checks; ``bifrost-admin``: an unknown gateway
2     bad input: an unknown command or option, a bad option value (``--log-level foo``), invalid
      ``BIFROST_*`` settings in the environment
3     ``bifrost-admin``: an action the operation's state refuses
70    an internal error (a bug): the one line names the exception; ``BIFROST_DEBUG=1`` shows the
      traceback
130   interrupted (Ctrl-C)
====  =========================================================================================

Usage errors are printed by click as a boxed panel of several lines; here they are one line that
names the command, the problem, and where to look (``--help``). Tests drive the typer apps with
``CliRunner`` directly; the table test of bad inputs (``tests/cli_errors``) runs these entry
points as processes.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from pydantic import ValidationError

#: click's exceptions as the installed typer raises them (recent typer vendors its own click,
#: ``typer._click``; older ones use click itself): the module its ``BadParameter`` comes from.
_CLICK = sys.modules[typer.BadParameter.__module__]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _say(prog: str, message: str) -> None:
    print(f"{prog}: " + " ".join(message.split()), file=sys.stderr)


def settings_problems(exc: ValidationError) -> str:
    """A ``Settings`` validation error as one line naming each ``BIFROST_*`` variable."""
    return "; ".join(
        f"BIFROST_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        for err in exc.errors()
    )


def run_app(app: typer.Typer, prog: str, args: list[str] | None = None) -> int:
    """Run ``app`` as the command ``prog`` and return its exit code; failures are one line."""
    from bifrost.store.errors import StoreError

    try:
        result = app(args=args, prog_name=prog, standalone_mode=False)
    except _CLICK.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command given: the help was printed
            return EXIT_USAGE
        where = exc.ctx.command_path if exc.ctx is not None else prog
        _say(where, f"{exc.format_message()} (see `{where} --help`)")
        return EXIT_USAGE
    except _CLICK.ClickException as exc:
        _say(prog, exc.format_message())
        return int(exc.exit_code)
    except (typer.Abort, getattr(_CLICK, "Abort", typer.Abort)):
        _say(prog, "aborted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ValidationError as exc:
        if exc.title != "Settings" or os.environ.get("BIFROST_DEBUG"):
            return _internal(prog, exc)
        _say(prog, f"invalid settings in the environment: {settings_problems(exc)}")
        return EXIT_USAGE
    except StoreError as exc:
        _say(prog, str(exc))
        return EXIT_FAILURE
    except OSError as exc:
        _say(prog, str(exc))
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the net: one line, not a traceback
        return _internal(prog, exc)
    return result if isinstance(result, int) else 0


def _internal(prog: str, exc: Exception) -> int:
    if os.environ.get("BIFROST_DEBUG"):
        raise exc
    _say(prog, f"internal error: {type(exc).__name__}: {exc} (BIFROST_DEBUG=1 shows the "
               "traceback; please report it)")
    return EXIT_INTERNAL


def bifrost() -> NoReturn:
    """The ``bifrost`` console script."""
    from bifrost.cli.main import app

    sys.exit(run_app(app, "bifrost"))


def bifrost_admin() -> NoReturn:
    """The ``bifrost-admin`` console script."""
    from bifrost.cli.admin import app

    sys.exit(run_app(app, "bifrost-admin"))
