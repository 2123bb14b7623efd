"""Settings: flags > environment (``TRIVY_MIRROR_*``) > config file > defaults.

click already gives flags > env > ``default_map`` > defaults; this module turns the YAML config file into
that ``default_map``. The file holds top-level keys shared by every command and optional per-command
sections, both spelled as the long flags are (``store``, ``from``, ``sync-every``...)::

    store: /var/lib/trivy-mirror
    from: [registry.internal:5000/aquasec]
    serve:
      listen: 0.0.0.0:5000
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from trivy_mirror.errors import UsageError

COMMANDS = ("sync", "serve", "status", "copy", "export", "import", "trivy-config", "trivy-cache")


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trivy-mirror" / "config.yaml"


def load_config(path: Path | None) -> dict[str, Any]:
    """Read the config file (``path``, else the default one if it exists) into a click ``default_map``."""
    explicit = path is not None
    path = path or default_config_path()
    if not explicit and not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must be a mapping of settings")
    shared = {_param(k): v for k, v in data.items() if k not in COMMANDS}
    default_map: dict[str, Any] = {}
    for command in COMMANDS:
        section = data.get(command) or {}
        if not isinstance(section, dict):
            raise UsageError(f"config file {path}: section {command!r} must be a mapping")
        default_map[command] = {**shared, **{_param(k): v for k, v in section.items()}}
    return default_map


def _param(key: Any) -> str:
    name = str(key).replace("-", "_")
    return {"from": "sources", "to": "destination", "vex_from": "vex_sources"}.get(name, name)
