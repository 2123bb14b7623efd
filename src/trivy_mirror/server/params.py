"""Request parameters turned into validated values, or into the OCI error a client expects."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from aiohttp import web

from trivy_mirror.errors import InvalidDigest, InvalidReference
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.reference import validate_repository
from trivy_mirror.server.errors import OciError


def repository_of(name: str, aliases: Mapping[str, str]) -> str:
    """The store repository serving ``name`` (validated, aliases applied)."""
    try:
        validate_repository(name)
    except InvalidReference as err:
        raise OciError("NAME_INVALID", str(err)) from None
    return aliases.get(name, name)


def parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest as err:
        raise OciError("DIGEST_INVALID", str(err)) from None


def paginate(items: Sequence[str], request: web.Request) -> tuple[list[str], dict[str, str]]:
    """One page of a sorted list, honouring ``n`` and ``last``, and the headers (``Link`` to the next page)."""
    last = request.query.get("last")
    n_text = request.query.get("n")
    limit: int | None = None
    if n_text is not None:
        if not (n_text.isascii() and n_text.isdigit()) or len(n_text) > 9:
            raise OciError("PAGINATION_NUMBER_INVALID", f"invalid page size n={n_text[:20]!r}")
        limit = int(n_text)
    start = bisect_right(items, last) if last else 0
    end = len(items) if limit is None else min(len(items), start + limit)
    page = list(items[start:end])
    headers = {}
    if end < len(items) and page:
        query = urlencode({"n": limit, "last": page[-1]})
        headers["Link"] = f'<{request.path}?{query}>; rel="next"'
    return page, headers
