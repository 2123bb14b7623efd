"""Server settings: listen addresses and the combinations refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from trivy_mirror.errors import UsageError
from trivy_mirror.server.settings import DEFAULT_ALIASES, ServerSettings, parse_listen


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5000", ("127.0.0.1", 5000)),
    ("localhost:80", ("localhost", 80)),
    ("[::1]:5000", ("::1", 5000)),
    ("[::]:5000", ("::", 5000)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("5001", ("127.0.0.1", 5001)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", ":5000", "host", "host:", "host:http", "::1:5000", "[::1]5000", "[::1",
                                  "host:70000", "host:\uff15\uff10\uff10\uff10", "\u00b2"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


def test_defaults() -> None:
    settings = ServerSettings()
    assert settings.listen == "127.0.0.1:5000"
    assert dict(settings.aliases) == dict(DEFAULT_ALIASES)
    assert settings.aliases["aquasecurity/trivy-checks"] == "aquasec/trivy-checks"
    assert not settings.auth_enabled and settings.scheme == "http"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"allow_push": True}, "pushing needs authentication"),
    ({"anonymous_pull": True}, "anonymous pull"),
    ({"tls_cert": Path("c.pem")}, "both a certificate and a key"),
    ({"tls_key": Path("k.pem")}, "both a certificate and a key"),
    ({"public_url": "mirror.example"}, "invalid public URL"),
    ({"public_url": "ftp://mirror.example"}, "invalid public URL"),
    ({"sync_every": 0}, "positive"),
    ({"keep": 0}, "keep"),
    ({"aliases": {"Bad": "aquasec/trivy-db"}}, "invalid alias"),
    ({"listen": "nonsense"}, "listen"),
])
def test_refused_combinations(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ServerSettings(**kwargs)  # type: ignore[arg-type]


def test_push_with_auth_is_fine(tmp_path: Path) -> None:
    ServerSettings(allow_push=True, token_file=tmp_path / "t")
    ServerSettings(allow_push=True, htpasswd=tmp_path / "h", anonymous_pull=True,
                   push_users=frozenset({"robot"}))
