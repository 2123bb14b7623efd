"""``completion`` and ``man``: the command line described for shells and for man(1)."""

from __future__ import annotations

from pathlib import Path

import click

SHELLS = ("bash", "zsh", "fish")
PROG_NAME = "trivy-mirror"
COMPLETE_VAR = "_TRIVY_MIRROR_COMPLETE"
"""The variable click's completion scripts set when they call the program for completions."""


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL: commands, options and choices complete on TAB.

    The script calls trivy-mirror itself to complete, so completions follow the installed version.

    \b
    Install:
      bash:  trivy-mirror completion bash > ~/.local/share/bash-completion/completions/trivy-mirror
      zsh:   trivy-mirror completion zsh > "${fpath[1]}/_trivy-mirror"
      fish:  trivy-mirror completion fish > ~/.config/fish/completions/trivy-mirror.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # every choice is one of click's shells
    click.echo(completer(ctx.find_root().command, {}, PROG_NAME, COMPLETE_VAR).source())


@click.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def man(ctx: click.Context, directory: Path | None) -> None:
    """Write the man pages, generated from the commands' help: trivy-mirror.1 and trivy-mirror-COMMAND.1 for
    each command, into DIRECTORY; without it, print trivy-mirror.1 on stdout.

    \b
    Examples:
      trivy-mirror man | man -l -
      trivy-mirror man ~/.local/share/man/man1 && man trivy-mirror-sync
    """
    from trivy_mirror.ui.manpage import pages

    group = ctx.find_root().command
    assert isinstance(group, click.Group)
    rendered = pages(group)
    if directory is None:
        click.echo(rendered["trivy-mirror.1"], nl=False)
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (directory / name).write_text(text)
    click.echo(f"wrote {len(rendered)} man pages into {directory}")


COMMANDS = (completion, man)
