"""Credential lookup in docker's config.json (auths, credHelpers, credsStore) and podman's auth.json."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from trivy_mirror.registry import Credentials, Keychain
from trivy_mirror.registry.credentials import lookup_keys


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty home and a bin directory for fake credential helpers on PATH."""
    (tmp_path / "home").mkdir()
    (tmp_path / "bin").mkdir()
    return {"HOME": str(tmp_path / "home"), "PATH": f"{tmp_path / 'bin'}:{os.environ.get('PATH', '')}"}


def _helper(env: dict[str, str], name: str, answers: dict[str, dict[str, str]]) -> Path:
    """A ``docker-credential-<name>`` that answers ``get`` from ``answers`` and logs what it was asked."""
    bin_dir = Path(env["PATH"].split(":")[0])
    log = bin_dir / f"{name}.log"
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"answers = {answers!r}\n"
        "url = sys.stdin.read().strip()\n"
        f"open({str(log)!r}, 'a').write(sys.argv[1] + ' ' + url + '\\n')\n"
        "if url not in answers:\n"
        "    print('credentials not found in native keychain')\n"
        "    sys.exit(1)\n"
        "print(json.dumps(answers[url]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def test_lookup_keys_most_specific_first() -> None:
    assert lookup_keys("127.0.0.1:5000", "aquasec/trivy-db") == [
        "127.0.0.1:5000/aquasec/trivy-db", "127.0.0.1:5000/aquasec", "127.0.0.1:5000"]
    assert lookup_keys("docker.io", None) == ["docker.io"]


def test_docker_config_auth_field(env: dict[str, str]) -> None:
    _write(Path(env["HOME"]) / ".docker/config.json",
           {"auths": {"127.0.0.1:5000": {"auth": _b64("alice:pa:ss")}}})
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("127.0.0.1:5000", "aquasec/trivy-db") == Credentials("alice", "pa:ss")
    assert keychain.resolve("127.0.0.1:5001", "aquasec/trivy-db") is None


def test_docker_config_env_var_and_key_forms(env: dict[str, str], tmp_path: Path) -> None:
    env["DOCKER_CONFIG"] = str(tmp_path / "dockercfg")
    _write(tmp_path / "dockercfg/config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": _b64("hub:hubpw")},
        "https://registry.example:8443": {"username": "u", "password": "p"},
        "registry.example:8443/team": {"auth": _b64("team:teampw")},
        "ghcr.io": {"identitytoken": "refresh-token"},
        "tokens.example": {"registrytoken": "static-token"},
        "empty.example": {},
    }})
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("docker.io", "aquasec/trivy-db") == Credentials("hub", "hubpw")
    assert keychain.resolve("registry.example:8443", "other/repo") == Credentials("u", "p")
    assert keychain.resolve("registry.example:8443", "team/trivy-db") == Credentials("team", "teampw")
    assert keychain.resolve("ghcr.io", "x") == Credentials("", "", identity_token="refresh-token")
    assert keychain.resolve("tokens.example") == Credentials("", "", token="static-token")
    assert keychain.resolve("empty.example") is None


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials("alice", "hunter2", identity_token="idt", token="tok"))
    assert "alice" in text
    assert not any(secret in text for secret in ("hunter2", "idt", "tok'"))


def test_cred_helper_per_host(env: dict[str, str]) -> None:
    log = _helper(env, "test", {"127.0.0.1:5000": {"ServerURL": "127.0.0.1:5000", "Username": "helper-user",
                                                   "Secret": "helper-secret"}})
    _write(Path(env["HOME"]) / ".docker/config.json", {
        "credHelpers": {"127.0.0.1:5000": "test", "127.0.0.1:6000": "test"},
        "auths": {"127.0.0.1:6000": {"auth": _b64("fallback:pw")}},
    })
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("127.0.0.1:5000", "a/b") == Credentials("helper-user", "helper-secret")
    # The helper knows nothing for :6000, so the plain auths entry is used.
    assert keychain.resolve("127.0.0.1:6000", "a/b") == Credentials("fallback", "pw")
    assert log.read_text().splitlines() == ["get 127.0.0.1:5000", "get 127.0.0.1:6000"]


def test_creds_store_and_identity_token_marker(env: dict[str, str]) -> None:
    log = _helper(env, "store", {
        "https://index.docker.io/v1/": {"Username": "<token>", "Secret": "refresh-me"},
        "registry.example": {"Username": "bob", "Secret": "bobpw"},
    })
    _write(Path(env["HOME"]) / ".docker/config.json", {"credsStore": "store", "auths": {"registry.example": {}}})
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("docker.io", "aquasec/trivy-db") == Credentials("", "", identity_token="refresh-me")
    assert keychain.resolve("registry.example", "x/y") == Credentials("bob", "bobpw")
    assert keychain.resolve("unknown.example", "x/y") is None
    assert "get https://index.docker.io/v1/" in log.read_text()


def test_missing_helper_is_skipped(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    _write(Path(env["HOME"]) / ".docker/config.json", {"credsStore": "desktop"})
    assert Keychain.from_environment(env).resolve("registry.example") is None
    assert "docker-credential-desktop is not on PATH" in caplog.text


def test_podman_auth_json_locations(env: dict[str, str], tmp_path: Path) -> None:
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    _write(tmp_path / "run/containers/auth.json", {"auths": {"quay.example/org": {"auth": _b64("runtime:pw")}}})
    _write(Path(env["HOME"]) / ".config/containers/auth.json", {"auths": {
        "quay.example": {"auth": _b64("config:pw")}}})
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("quay.example", "org/repo") == Credentials("runtime", "pw")
    assert keychain.resolve("quay.example", "other/repo") == Credentials("config", "pw")


def test_registry_auth_file_and_docker_first(env: dict[str, str], tmp_path: Path) -> None:
    env["REGISTRY_AUTH_FILE"] = str(_write(tmp_path / "custom.json", {"auths": {
        "a.example": {"auth": _b64("podman:pw")}, "b.example": {"auth": _b64("podman:pw")}}}))
    _write(Path(env["HOME"]) / ".docker/config.json", {"auths": {"a.example": {"auth": _b64("docker:pw")}}})
    keychain = Keychain.from_environment(env)
    assert keychain.resolve("a.example") == Credentials("docker", "pw")
    assert keychain.resolve("b.example") == Credentials("podman", "pw")


def test_broken_files_mean_anonymous(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    config = Path(env["HOME"]) / ".docker/config.json"
    config.parent.mkdir()
    config.write_text("{not json")
    assert Keychain.from_environment(env).resolve("a.example") is None
    _write(config, {"auths": {"a.example": {"auth": "!!!not-base64"}}})
    assert Keychain.from_environment(env).resolve("a.example") is None
    assert "!!!" not in caplog.text
