"""The config file and the ``TRIVY_MIRROR_*`` variables, both derived from the click options (issue 11 item 7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from trivy_mirror.catalog import assets
from trivy_mirror.cli import cli, options
from trivy_mirror.cli.config import Config, load_config, settings, settings_table
from trivy_mirror.errors import UsageError

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture(autouse=True)
def _no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("TRIVY_MIRROR_")]:
        monkeypatch.delenv(variable)


def params(command: str, args: list[str], config: Config | None = None) -> dict[str, Any]:
    """The values ``command`` would run with, as the group hands it the config file's defaults."""
    default_map = config.default_map if config else {}
    parent = cli.make_context("trivy-mirror", [command], default_map=default_map)
    return cli.commands[command].make_context(command, args, parent=parent,
                                              default_map=default_map.get(command)).params


def config_of(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, cli)


def test_keys_whose_parameter_has_another_name(tmp_path: Path) -> None:
    config = config_of(tmp_path, "assets: db\njson: true\nfrom: 10.0.0.5:5000/aquasec\n"
                                 "trivy-config:\n  format: env\n  vex-repo: [internal]\n"
                                 "import:\n  sha256: abc\nexport:\n  sign: /k\n")
    sync = params("sync", [], config)
    assert (sync["asset_names"], sync["as_json"], sync["sources"]) == ("db", True, ("10.0.0.5:5000/aquasec",))
    client = params("trivy-config", ["--mirror", "http://m"], config)
    assert client["output_format"] == "env" and client["vex_repositories"] == ("internal",)
    assert params("import", ["-"], config)["expected_sha256"] == "abc"
    assert params("export", ["b.tar"], config)["sign_key"] == Path("/k")


def test_a_section_overrides_the_top_level_and_flags_override_both(tmp_path: Path) -> None:
    config = config_of(tmp_path, "store: /top\nkeep: 3\nserve:\n  store: /served\n  listen: 0.0.0.0:5000\n")
    assert params("sync", [], config)["store"] == Path("/top") and params("sync", [], config)["keep"] == 3
    assert params("serve", [], config)["store"] == Path("/served")
    assert params("serve", [], config)["listen"] == "0.0.0.0:5000"
    assert params("serve", ["--store", "/flag"], config)["store"] == Path("/flag")
    assert "listen" not in config.default_map["sync"]  # a top-level key reaches only the commands having it


def test_verify_reads_the_file(tmp_path: Path) -> None:
    config = config_of(tmp_path, "store: /srv/store\nverify:\n  lock-timeout: 5\n")
    assert params("verify", [], config) == {"store": Path("/srv/store"), "repair": False, "as_json": False,
                                            "lock_timeout": 5.0}


def test_a_string_where_a_list_goes(tmp_path: Path) -> None:
    config = config_of(tmp_path, "from: host.internal/aquasec\nserve:\n  push-user: robot\n")
    assert params("sync", [], config)["sources"] == ("host.internal/aquasec",)
    assert params("serve", [], config)["push_user"] == ("robot",)


@pytest.mark.parametrize(("text", "message"), [
    ("listn: 0.0.0.0:5000\n", "unknown key 'listn': no command has --listn"),
    ("serve:\n  listn: x\n", "unknown key 'listn' in section 'serve': serve has no --listn"),
    ("status:\n  listen: x\n", "unknown key 'listen' in section 'status': status has no --listen"),
    ("config: other.yaml\n", "unknown key 'config'"),
    ("store: [a, b]\n", "store takes one value, not a list"),
    ("serve: 3\n", "section 'serve' must be a mapping"),
    ("- a\n", "must be a mapping of settings"),
])
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        config_of(tmp_path, text)


def run_with_config(tmp_path: Path, text: str, *args: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``trivy-mirror --config FILE ARGS`` as a process, the file holding ``text``: the file's path and the run."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path, subprocess.run([sys.executable, "-m", "trivy_mirror", "--config", str(path), *args],
                                capture_output=True, text=True, timeout=60, check=False,
                                env={**os.environ, "HOME": str(tmp_path)})


def test_an_unknown_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path, result = run_with_config(tmp_path, "serve:\n  listn: 0.0.0.0:5000\n", "status")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"trivy-mirror: error: config file {path}: unknown key 'listn' in "
                                          f"section 'serve': serve has no --listn"]


def test_global_options_from_the_file(tmp_path: Path) -> None:
    _path, result = run_with_config(tmp_path, "log-format: json\nquiet: true\n", "sync", "--from",
                                    "127.0.0.1:9/trivy-db:2")
    assert result.returncode == 2 and result.stderr.startswith('{"time"'), result.stderr


def test_a_bad_global_value_names_the_file(tmp_path: Path) -> None:
    path, result = run_with_config(tmp_path, "log-format: xml\n", "status")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"trivy-mirror: error: config file {path}: ") and "'xml' is not one of" in line


def test_every_option_has_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for command in cli.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
                flag = next(o for o in param.opts if o.startswith("--"))
                assert "TRIVY_MIRROR_" + flag[2:].upper().replace("-", "_") in names, (command.name, flag)
    monkeypatch.setenv("TRIVY_MIRROR_KEEP", "4")
    monkeypatch.setenv("TRIVY_MIRROR_JSON", "1")
    monkeypatch.setenv("TRIVY_MIRROR_FORMAT", "flags")
    monkeypatch.setenv("TRIVY_MIRROR_SIGN_KEY", "/old-name")
    assert params("sync", [])["keep"] == 4 and params("verify", [])["as_json"] is True
    assert params("trivy-config", ["--mirror", "http://m"])["output_format"] == "flags"
    assert params("export", ["b.tar"])["sign_key"] == Path("/old-name")  # a name it had before still works


def test_readme_has_the_derived_table() -> None:
    text = README.read_text()
    start, end = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    assert start in text and end in text
    assert text.split(start, 1)[1].split(end, 1)[0] == settings_table(cli)
    assert {s.key for s in settings(cli)} >= {"store", "from", "to", "vex-from", "keep", "sync-every", "format"}


def test_help_names_the_catalog_assets() -> None:
    assert options.ASSET_NAMES == assets.OCI_ASSET_NAMES
