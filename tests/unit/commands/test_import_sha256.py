"""``import --sha256`` takes the digest as export printed it, with ``sha256:``, or the whole sha256sum line."""

from __future__ import annotations

import pytest

from trivy_mirror.commands.import_ import parse_sha256
from trivy_mirror.errors import UsageError

HEX = "3f5a" + "0" * 58 + "e1"


@pytest.mark.parametrize("given", [HEX, f"sha256:{HEX}", f"{HEX}  trivy-assets.tar\n", f"{HEX} *trivy-assets.tar",
                                   HEX.upper()])
def test_accepted(given: str) -> None:
    assert parse_sha256(given) == HEX


@pytest.mark.parametrize("given", ["", "  ", "abc", f"md5:{HEX}", f"trivy-assets.tar {HEX}"])
def test_refused(given: str) -> None:
    with pytest.raises(UsageError, match="not a sha256 digest"):
        parse_sha256(given)
