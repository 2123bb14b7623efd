"""``completion`` and ``man``: bash completes through the script click generates, and the committed man pages
are the ones the commands' help gives now."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trivy_mirror.cli import cli
from trivy_mirror.ui.manpage import pages

MAN_DIR = Path(__file__).resolve().parents[3] / "docs" / "man"


def bash_completions(tmp_path: Path, line: str) -> list[str]:
    """What bash offers on TAB after ``line``, with the script from ``completion bash`` sourced as click
    documents (the script runs ``trivy-mirror`` from PATH: here a wrapper around this interpreter)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "trivy-mirror"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m trivy_mirror \"$@\"\n")
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    words = line.split() + ([""] if line.endswith(" ") else [])
    script = (f'eval "$(trivy-mirror completion bash)"\n'
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_trivy_mirror_completion trivy-mirror\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_commands_and_flags(tmp_path: Path) -> None:
    assert bash_completions(tmp_path, "trivy-mirror sy") == ["sync"]
    assert {"trivy-cache", "trivy-config"} <= set(bash_completions(tmp_path, "trivy-mirror trivy-c"))
    assert "--sync-every" in bash_completions(tmp_path, "trivy-mirror serve --sync")
    assert bash_completions(tmp_path, "trivy-mirror trivy-config --format f") == ["flags"]


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F _trivy_mirror_completion"),
                                               ("zsh", "compdef _trivy_mirror_completion trivy-mirror"),
                                               ("fish", "complete --no-files --command trivy-mirror")])
def test_completion_prints_the_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0 and marker in result.output and "_TRIVY_MIRROR_COMPLETE" in result.output


def test_committed_man_pages_are_current() -> None:
    committed = {p.name: p.read_text() for p in MAN_DIR.glob("*.1")}
    generated = pages(cli)
    assert sorted(committed) == sorted(generated)
    for name, text in generated.items():
        assert committed[name] == text, f"{name}: run PYTHONPATH=src python3 scripts/gen_cli_docs.py"


def test_man_writes_every_page(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["man", str(tmp_path / "man1")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "man1").iterdir()} == {"trivy-mirror.1", *(
        f"trivy-mirror-{name}.1" for name in cli.commands)}
    page = (tmp_path / "man1" / "trivy-mirror-serve.1").read_text()
    assert page.startswith('.TH "TRIVY-MIRROR-SERVE" "1"') and "\\-\\-sync\\-every" in page
    assert "TRIVY_MIRROR_SYNC_EVERY" in page


def test_man_pages_render(tmp_path: Path) -> None:
    """man(1) formats the page without a warning (groff -ww reports unknown requests and escapes)."""
    page = tmp_path / "trivy-mirror-import.1"
    page.write_text(pages(cli)["trivy-mirror-import.1"])
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and not result.stderr, result.stderr
