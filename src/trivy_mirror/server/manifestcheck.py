"""The strict checks a pushed manifest passes before it is parsed, as distribution's registry applies them.

Reading from upstream registries is lenient on purpose (``parse_manifest``); what clients push into this
server is not: the bytes must be UTF-8 JSON, ``schemaVersion`` the integer 2, the body unambiguously an image
manifest or an index, and a manifest ``Content-Type`` must agree with the body's ``mediaType``. JSON nested too
deeply for the parser is a 400, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from trivy_mirror.jsonutil import load_object
from trivy_mirror.oci import mediatype
from trivy_mirror.server.errors import OciError

MANIFEST_TYPES = mediatype.IMAGE_MANIFESTS | mediatype.INDEXES


def check_pushed_manifest(body: bytes, content_type: str | None) -> None:
    """Raise ``MANIFEST_INVALID`` for anything distribution would refuse."""
    obj = _load(body)
    version = obj.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise _invalid(f"schemaVersion must be the integer 2, not {json.dumps(version)[:20]}")
    body_type = obj.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType must be a string")
    is_index = "manifests" in obj
    if is_index and ("layers" in obj or "config" in obj):
        raise _invalid("ambiguous manifest: it has both manifests (an index) and layers or config (an image)")
    header = (content_type or "").split(";")[0].strip().lower()
    if header in MANIFEST_TYPES and body_type is not None and header != body_type:
        raise _invalid(f"Content-Type {header} does not match the manifest's mediaType {body_type[:100]}")
    declared = body_type or (header if header in MANIFEST_TYPES else None)
    if (declared in mediatype.INDEXES) != is_index and declared in MANIFEST_TYPES:
        raise _invalid(f"the manifest's structure does not match its media type {declared}")


def _load(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("manifest is not UTF-8") from None
    return load_object(text, "manifest", _invalid)


def _invalid(message: str) -> OciError:
    return OciError("MANIFEST_INVALID", message)
