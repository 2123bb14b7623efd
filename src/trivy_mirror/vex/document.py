"""Reading the JSON documents of a VEX repository (its manifest and index): refusals name the document."""

from __future__ import annotations

import json
from typing import Any

from trivy_mirror.errors import RefusedCandidate


def refused(document: str, detail: str) -> RefusedCandidate:
    return RefusedCandidate(f"invalid {document}: {detail}")


def load_json(data: bytes, document: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise refused(document, f"not JSON ({err})") from None
