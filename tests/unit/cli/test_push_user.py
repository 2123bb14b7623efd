"""``--push-user`` on the command line, in ``TRIVY_MIRROR_PUSH_USER`` and as ``push-user:`` in the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trivy_mirror.cli import cli
from trivy_mirror.cli.config import load_config


def _serve_params(args: list[str], config: Path | None = None) -> dict[str, object]:
    default_map = load_config(config, cli).default_map if config else {}
    parent = cli.make_context("trivy-mirror", ["serve"], default_map=default_map)
    context = cli.commands["serve"].make_context("serve", args, parent=parent,
                                                 default_map=default_map.get("serve"))
    return context.params


def test_push_users_from_flags_env_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _serve_params(["--push-user", "robot", "--push-user", "feeder"])["push_user"] == ("robot", "feeder")
    config = tmp_path / "config.yaml"
    config.write_text("serve:\n  push-user: [robot]\n")
    assert _serve_params([], config)["push_user"] == ("robot",)
    monkeypatch.setenv("TRIVY_MIRROR_PUSH_USER", "envbot")
    assert _serve_params([])["push_user"] == ("envbot",)
    assert _serve_params([])["allow_push"] is False
