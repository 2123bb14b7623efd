"""Help texts say what the commands do: no printf escapes, no ``all`` value that is refused, the right verb."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from trivy_mirror.cli import cli

COMMANDS = ["sync", "status", "serve", "copy", "export", "import", "verify", "trivy-cache", "trivy-config"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_misleading_text(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "%%" not in result.output
    assert "default: all]" not in result.output


def test_serve_jitter_and_status_verb() -> None:
    runner = CliRunner()
    assert "10% jitter" in runner.invoke(cli, ["serve", "--help"], terminal_width=200).output
    status = runner.invoke(cli, ["status", "--help"], terminal_width=200).output
    assert "Push into" not in status and "Report on this registry" in status
