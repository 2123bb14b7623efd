"""Item 10 of the review: what the server tells clients without credentials.

Replayed: ``/readyz`` without credentials showed upstream hosts and sync errors while auth was on.
"""

from __future__ import annotations

import json

import pytest

from .conftest import SCANNER, SCANNER_PASSWORD, Served, basic

pytestmark = pytest.mark.security


def test_readyz_without_credentials_is_reduced_to_states(served: Served, upstream_host: str) -> None:
    status, _, body = served.request("GET", "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "assets": [{"asset": "db", "state": "fresh"}]}
    assert upstream_host.encode() not in body
    status, _, body = served.request("GET", "/readyz", headers={"Authorization": basic(SCANNER, "wrong")})
    assert upstream_host.encode() not in body
    status, _, body = served.request("GET", "/readyz", headers={"Authorization": basic(SCANNER, SCANNER_PASSWORD)})
    details = json.loads(body)
    assert details["assets"][0]["source"].startswith(upstream_host) and details["credentials"] == []
