"""``--src-password-stdin`` / ``--dest-password-stdin``: a password that never shows in ``ps``."""

from __future__ import annotations

import io

import click
import pytest

from trivy_mirror.cli import cli
from trivy_mirror.cli.parsing import parse_creds
from trivy_mirror.errors import UsageError
from trivy_mirror.registry.credentials import Credentials


def _context(monkeypatch: pytest.MonkeyPatch, stdin: str, **meta: bool) -> click.Context:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    context = click.Context(cli)
    context.meta.update(meta)
    return context


def test_password_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    with _context(monkeypatch, "s3cret\nignored\n", src_password_stdin=True):
        assert parse_creds("robot", "src") == Credentials("robot", "s3cret")
    monkeypatch.setenv("TRIVY_MIRROR_DEST_USERNAME", "pusher")
    with _context(monkeypatch, "pw\r\n", dest_password_stdin=True):
        assert parse_creds(None, "dest") == Credentials("pusher", "pw")


@pytest.mark.parametrize(("creds", "stdin", "meta", "message"), [
    ("robot:inline", "pw\n", {"src_password_stdin": True}, "give --src-creds USER alone"),
    (None, "pw\n", {"src_password_stdin": True}, "needs a user"),
    ("robot", "", {"src_password_stdin": True}, "no password on stdin"),
    ("robot", "pw\n", {"src_password_stdin": True, "dest_password_stdin": True}, "cannot both read stdin"),
])
def test_password_stdin_mistakes_are_one_line(monkeypatch: pytest.MonkeyPatch, creds: str | None, stdin: str,
                                              meta: dict[str, bool], message: str) -> None:
    monkeypatch.delenv("TRIVY_MIRROR_SRC_USERNAME", raising=False)
    with _context(monkeypatch, stdin, **meta), pytest.raises(UsageError, match=message):
        parse_creds(creds, "src")


@pytest.mark.parametrize("command", ["sync", "copy", "serve", "status"])
def test_help_says_how_to_keep_passwords_out_of_ps(command: str) -> None:
    text = cli.commands[command].get_help(click.Context(cli.commands[command]))
    assert "visible in ps" in " ".join(text.split()) and "-password-stdin" in text
