"""The command line: the ``trivy-mirror`` group and its entry point. It parses flags and calls
:mod:`trivy_mirror.commands`; it holds no logic of its own.

One module per group of commands (:mod:`.sync`, :mod:`.serve`, :mod:`.airgap`, :mod:`.client`,
:mod:`.maintenance`, :mod:`.trust`, :mod:`.shell`), the options they share declared once in :mod:`.options`, the
config file and the environment derived from those options in :mod:`.config`. Building this tree imports click and
nothing heavy: each command imports what it needs when it runs, so ``--version``, ``--help`` and completion stay
quick.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from trivy_mirror.cli import airgap, client, maintenance, serve, shell, trust
from trivy_mirror.cli import sync as sync_commands
from trivy_mirror.cli.config import derive_envvars, load_config
from trivy_mirror.cli.shell import COMPLETE_VAR, PROG_NAME
from trivy_mirror.errors import MirrorError, UsageError
from trivy_mirror.ui import console, logs
from trivy_mirror.version import __version__

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name=PROG_NAME)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="YAML config file: its keys are the long flags, top level for every command, a section per "
                   "command [default: $XDG_CONFIG_HOME/trivy-mirror/config.yaml when it exists].")
@click.option("-v", "--verbose", count=True, help="Debug log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              help="Log line format on stderr (json: errors too).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: int, quiet: bool, log_format: str) -> None:
    """Self-host Trivy's scan assets: mirror the vulnerability DB, Java DB and checks bundle into a local store
    or your own registry, serve them to Trivy clients, and keep them fresh.

    The options below may also be given after the command (trivy-mirror sync -v). Every flag may also come
    from the environment (TRIVY_MIRROR_<FLAG>, e.g. TRIVY_MIRROR_STORE) or the config file.

    \b
    Quick start:
      trivy-mirror sync                 # copy the assets into the local store
      trivy-mirror serve                # serve them (and keep syncing) on 127.0.0.1:5000
      trivy image --db-repository 127.0.0.1:5000/aquasec/trivy-db:2 ...
    """
    config = load_config(config_file, cli)
    for name, value in config.group.items():
        if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT:
            ctx.params[name] = _from_file(ctx, name, value, config.path)
    logs.setup(verbose=ctx.params["verbose"], quiet=ctx.params["quiet"], fmt=ctx.params["log_format"])
    ctx.default_map = config.default_map


def _from_file(ctx: click.Context, name: str, value: object, path: Path | None) -> object:
    """A group option's value from the config file (logging is set up from it, so it is read here)."""
    param = next(p for p in cli.params if p.name == name)
    try:
        return param.type_cast_value(ctx, value)
    except click.BadParameter as err:
        raise UsageError(f"config file {path}: {err.format_message()}") from None


for _module in (sync_commands, serve, airgap, client, maintenance, trust, shell):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
derive_envvars(cli)


GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
GLOBAL_VALUED = frozenset({"--config", "--log-format"})


def hoist_global_options(args: list[str]) -> list[str]:
    """``trivy-mirror sync -v --config F`` as ``trivy-mirror -v --config F sync``: the global options are
    accepted after the command too (click reads them only before it). Nothing after ``--`` moves."""
    position = _command_position(args)
    if position is None:
        return args
    hoisted: list[str] = []
    rest: list[str] = []
    tail = args[position + 1:]
    index = 0
    while index < len(tail):
        arg = tail[index]
        name = arg.partition("=")[0]
        if arg == "--":
            rest += tail[index:]
            break
        if arg in GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            hoisted.append(arg)
        elif name in GLOBAL_VALUED:
            hoisted.append(arg)
            if "=" not in arg and index + 1 < len(tail):
                index += 1
                hoisted.append(tail[index])
        else:
            rest.append(arg)
        index += 1
    return [*args[:position], *hoisted, args[position], *rest]


def _command_position(args: list[str]) -> int | None:
    """Index of the command name among the arguments (after any global options and their values)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-"):
            return index
        if arg in GLOBAL_VALUED:
            index += 1
        index += 1
    return None


def requested_log_format(args: list[str]) -> str:
    """``--log-format`` as given before the command (after hoisting), else its variable: known before click
    parses anything, so that even a usage error is written in that format."""
    for index, arg in enumerate(args[:_command_position(args)]):
        if arg == "--log-format" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--log-format="):
            return arg.partition("=")[2]
    return os.environ.get("TRIVY_MIRROR_LOG_FORMAT", "text")


def usage_line(err: click.ClickException) -> str:
    """click's usage error (four lines: usage, hint, blank, error) as one line naming the help to read."""
    message = " ".join(err.format_message().split())
    context = err.ctx if isinstance(err, click.UsageError) else None
    if context is None:
        return message
    return f"{message} (see '{context.command_path} --help')"


def main() -> None:
    """Entry point: expected failures become one line on stderr and a documented exit code."""
    args = hoist_global_options(sys.argv[1:])
    console.use_json(requested_log_format(args) == "json")
    try:
        code = cli.main(args=args, prog_name=PROG_NAME, complete_var=COMPLETE_VAR, standalone_mode=False)
    except click.exceptions.Abort:
        console.error("aborted")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:
        console.error(usage_line(err))
        sys.exit(EXIT_USAGE if isinstance(err, click.UsageError) else err.exit_code)
    except MirrorError as err:
        console.error(str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:
        logging.getLogger("trivy_mirror").debug("internal error", exc_info=True)
        console.error(f"internal error: {type(err).__name__}: {err} (run with -v for the traceback)")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
