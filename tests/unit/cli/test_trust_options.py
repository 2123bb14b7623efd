"""``--hold [ASSET=]DURATION``: one clear usage error for a bad value."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trivy_mirror.cli.parsing import trust_settings
from trivy_mirror.errors import UsageError


def test_hold_per_asset_and_for_every_asset() -> None:
    settings = trust_settings(("db=24h", "2h"))
    assert settings.hold_for("db") == timedelta(hours=24)
    assert settings.hold_for("checks") == timedelta(hours=2)
    assert trust_settings(()).hold_for("db") == timedelta(0)


@pytest.mark.parametrize(("value", "message"), [("vex=1h", "unknown asset 'vex'"), ("db=soon", "not a Go duration")])
def test_a_bad_hold_is_one_usage_error(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        trust_settings((value,))
