"""Settings: flags > environment (``TRIVY_MIRROR_*``) > config file > defaults, all derived from the options.

Nothing here lists settings by hand. Every option of every command, and of the group, has:

- a config file key: its long flag without the dashes (``store``, ``from``, ``sync-every``, ``json``). A
  top-level key applies to every command that has that option; a section named after a command
  (``serve:``) sets that command's options and wins over the top level. A key no command has, or a key in a
  section whose command lacks it, is an error, never ignored. Where an option takes several values a single
  string is one value (``from: registry.internal/aquasec``).
- an environment variable: ``TRIVY_MIRROR_`` and the long flag in capitals, dashes as underscores
  (``--sync-every``: ``TRIVY_MIRROR_SYNC_EVERY``); an option that named its own variable before keeps it too.

click gives the precedence (flags > env > ``default_map`` > defaults); this module turns the YAML file into that
``default_map`` and sets the variables on the options::

    store: /var/lib/trivy-mirror
    from: [registry.internal:5000/aquasec]
    serve:
      listen: 0.0.0.0:5000
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from trivy_mirror.errors import UsageError

ENV_PREFIX = "TRIVY_MIRROR_"
NOT_SETTINGS = frozenset({"help", "version", "config"})
"""Options that are no setting: ``--help``, ``--version`` and the config file's own name (only its variable)."""


def setting_key(param: click.Parameter) -> str | None:
    """The config key of an option (its first long flag without dashes); None for arguments and --help."""
    if not isinstance(param, click.Option):
        return None
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return longs[0][2:] if longs else None


def envvar_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace("-", "_")


def envvars(param: click.Parameter) -> list[str]:
    """The variables an option reads, in click's order."""
    if param.envvar is None:
        return []
    return [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)


def derive_envvars(group: click.Group) -> None:
    """Give every option its ``TRIVY_MIRROR_<FLAG>`` variable (after the one it names itself, if any)."""
    for _command, param in _options(group):
        key = setting_key(param)
        if key is None or param.name == "help" or key == "version":
            continue
        derived = envvar_name(key)
        names = envvars(param)
        param.envvar = [*names, derived] if derived not in names else names


def _options(group: click.Group) -> Iterator[tuple[str | None, click.Parameter]]:
    """(command name, option) for the group's own options (command None) and each command's."""
    for param in group.params:
        yield None, param
    for name, command in sorted(group.commands.items()):
        for param in command.params:
            yield name, param


def _command_keys(command: click.Command) -> dict[str, click.Parameter]:
    keys = {setting_key(p): p for p in command.params}
    return {k: p for k, p in keys.items() if k is not None and k not in NOT_SETTINGS}


@dataclass
class Config:
    """What a config file sets: each command's ``default_map`` and the group's own options by parameter name."""

    default_map: dict[str, dict[str, Any]] = field(default_factory=dict)
    group: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trivy-mirror" / "config.yaml"


def load_config(path: Path | None, group: click.Group) -> Config:
    """Read the config file (``path``, else the default one if it exists) against ``group``'s options."""
    explicit = path is not None
    path = path or default_config_path()
    if not explicit and not path.exists():
        return Config()
    return parse_config(_read(path), group, path)


def _read(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None


def parse_config(data: Any, group: click.Group, path: Path) -> Config:
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must be a mapping of settings")
    commands = {name: _command_keys(command) for name, command in group.commands.items()}
    own = _command_keys(group)
    shared = {str(k): v for k, v in data.items() if str(k) not in commands}
    for key in shared:
        if key not in own and not any(key in keys for keys in commands.values()):
            raise UsageError(f"config file {path}: unknown key {key!r}: no command has --{key}")
    config = Config(group={own[k].name or k: _value(own[k], v, path, k) for k, v in shared.items()
                           if k in own and v is not None}, path=path)
    for name, keys in commands.items():
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise UsageError(f"config file {path}: section {name!r} must be a mapping of settings")
        for key in map(str, section):
            if key not in keys:
                raise UsageError(f"config file {path}: unknown key {key!r} in section {name!r}: "
                                 f"{name} has no --{key}")
        merged = {**{k: v for k, v in shared.items() if k in keys}, **{str(k): v for k, v in section.items()}}
        config.default_map[name] = {keys[k].name or k: _value(keys[k], v, path, f"{name}.{k}")
                                    for k, v in merged.items() if v is not None}
    return config


def _value(param: click.Parameter, value: Any, path: Path, where: str) -> Any:
    """A YAML value as click takes it from ``default_map``: a lone string where several values go is one."""
    if param.multiple or param.nargs != 1:
        return [value] if not isinstance(value, list | tuple) else value
    if isinstance(value, list | tuple | dict):
        raise UsageError(f"config file {path}: {where} takes one value, not a {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: a config key, its variables and the commands that have it."""

    key: str
    variables: tuple[str, ...]
    commands: tuple[str, ...]


def settings(group: click.Group) -> list[Setting]:
    """Every setting of ``group``, sorted by key (the README's table and the tests read this)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for command, param in _options(group):
        key = setting_key(param)
        if key is None or key in ("help", "version"):
            continue
        variables, commands = found.setdefault(key, ([], []))
        variables.extend(v for v in envvars(param) if v not in variables)
        commands.append(command or "(all)")
    return [Setting(key, tuple(variables), tuple(commands)) for key, (variables, commands) in sorted(found.items())]


def settings_table(group: click.Group) -> str:
    """The README's configuration table, in Markdown."""
    lines = ["| Flag | Config key | Environment variable | Commands |", "| --- | --- | --- | --- |"]
    for setting in settings(group):
        key = "—" if setting.key in NOT_SETTINGS else f"`{setting.key}`"
        variables = ", ".join(f"`{v}`" for v in setting.variables)
        lines.append(f"| `--{setting.key}` | {key} | {variables} | {', '.join(setting.commands)} |")
    return "\n".join(lines) + "\n"
