"""The ``GET /vex/`` listing as its two readers (trivy-config, a child mirror's --parent) read it."""

from __future__ import annotations

import json

import pytest

from trivy_mirror.vex.listing import MAX_LISTING, listing_names


def test_the_names_in_the_listing_order() -> None:
    body = {"repositories": [{"name": "vexhub", "url": "http://m/vex/vexhub"}, {"name": "internal", "url": "x"}]}
    assert listing_names(json.dumps(body).encode()) == ["vexhub", "internal"]


@pytest.mark.parametrize("data", [
    b"not json", b"[]", b'{"repositories": 3}', b'{"repositories": [{"url": "x"}]}', b'{"repos": []}',
    b'{"repositories": [{"name": 7}]}', b'{"repositories": ["vexhub"]}',
    b'{"repositories": []' + b" " * MAX_LISTING + b"}",
])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        listing_names(data)
