"""Which Trivy sent a request: ``User-Agent: trivy/0.67.2 ...`` (the version first, TRIVY-ASSETS.md 14).

Server-side decisions (no 304 for old VEX clients) and the fleet census both read it; anything else (curl,
skopeo, a dev build) is "not a known Trivy" and is never trusted to carry a version.
"""

from __future__ import annotations

import re

_AGENT = re.compile(r"trivy/v?(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.])")

Version = tuple[int, int, int]


def trivy_version(user_agent: str | None) -> Version | None:
    """The Trivy version of a ``User-Agent``, or None when it is not a released Trivy."""
    if not user_agent:
        return None
    found = _AGENT.match(user_agent.strip()[:200])
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def version_label(version: Version) -> str:
    return ".".join(str(part) for part in version)
