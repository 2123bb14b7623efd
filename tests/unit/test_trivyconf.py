"""Client configuration: Trivy's plain-HTTP rule, mirror URLs and the generated documents."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from trivy_mirror.errors import UsageError
from trivy_mirror.trivyconf import (
    ClientConfig,
    asset_reference,
    client_credentials,
    env_lines,
    flag_line,
    parse_mirror,
    repository_yaml,
    select_vex,
    trivy_uses_plain_http,
    trivy_yaml,
    vex_config_path,
)


@pytest.mark.parametrize(("registry", "plain"), [
    ("127.0.0.1:5000", True), ("127.0.0.1", True), ("localhost:5000", True), ("mirror.localhost", True),
    ("mirror.localhost:80", True), ("10.0.0.5:5000", True), ("172.31.255.1", True), ("192.168.1.1:443", True),
    ("[::1]:5000", True), ("fd00::1", True),  # Go matches "::1" anywhere in the name
    ("127.0.0.2:5000", False), ("localhost", False), ("172.32.0.1", False), ("11.0.0.1", False),
    ("mirror.example:5000", False), ("[fd00::2]:5000", False),
])
def test_trivy_plain_http_rule(registry: str, plain: bool) -> None:
    assert trivy_uses_plain_http(registry) is plain


@pytest.mark.parametrize(("text", "scheme", "prefix"), [
    ("http://10.0.0.5:5000", "http", "10.0.0.5:5000"),
    ("HTTPS://mirror.example/base/", "https", "mirror.example/base"),
    ("harbor.example/trivy", None, "harbor.example/trivy"),
    ("localhost:5000", None, "localhost:5000"),
])
def test_mirror_urls(text: str, scheme: str | None, prefix: str) -> None:
    url = parse_mirror(text)
    assert (url.transport, str(url)) == (scheme, prefix)
    assert asset_reference(url, "db") == f"{prefix}/aquasec/trivy-db:2"
    assert asset_reference(url, "checks") == f"{prefix}/aquasec/trivy-checks:2"


@pytest.mark.parametrize(("text", "said"), [
    ("mirror/base", "Docker Hub"), ("ftp://x.example", "scheme"), ("https://u:p@x.example", "credentials"),
    ("http://x.example/a?b", "HOST"), ("http://", "HOST"), ("https://x.example/UPPER", "invalid repository"),
])
def test_bad_mirror_urls(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_mirror(text)


def test_credentials_rules() -> None:
    with pytest.raises(UsageError, match="either"):
        client_credentials("u", "p", "t")
    with pytest.raises(UsageError, match="go together"):
        client_credentials("u")
    assert not client_credentials() and client_credentials(token="t") and client_credentials("u", "p")


def test_vex_needs_a_url_and_valid_names() -> None:
    with pytest.raises(UsageError, match="--vex-url"):
        ClientConfig(parse_mirror("harbor.example/trivy"), vex_repositories=("vexhub",))
    for name in ("default", "../x", "a b"):
        with pytest.raises(UsageError, match="VEX repository name"):
            ClientConfig(parse_mirror("http://10.0.0.5:5000"), vex_repositories=(name,),
                         vex_base="http://10.0.0.5:5000")


def _config(url: str = "http://mirror.example:5000", **kwargs: object) -> ClientConfig:
    mirror = parse_mirror(url)
    return ClientConfig(mirror, vex_repositories=("vexhub",), vex_base=mirror.url, **kwargs)  # type: ignore[arg-type]


def test_trivy_yaml_for_a_public_plain_http_mirror() -> None:
    config = _config(credentials=client_credentials(token="s3cret"), ca_file=Path("/etc/ca.pem"))
    text = trivy_yaml(config)
    document = yaml.safe_load(text)
    assert document["insecure"] is True and document["cacert"] == "/etc/ca.pem"
    # Each Trivy keeps its own checks tag (:1 up to 0.68, :2 from 0.69) through registry.mirrors.
    assert document["registry"] == {"mirrors": {"mirror.gcr.io": ["mirror.example:5000"]}, "token": "s3cret"}
    assert "misconfiguration" not in document
    assert document["vulnerability"] == {"vex": ["repo"]}
    assert document["db"]["repository"] == ["mirror.example:5000/aquasec/trivy-db:2"]
    assert "mirror.gcr.io/aquasec" not in yaml.safe_dump(document)  # no internet fallback
    # The commented alternative for a Trivy >= 0.69 fleet, once uncommented, is valid YAML.
    alternative = "\n".join(line[2:] for line in text.splitlines()
                            if line.startswith(("# misconfiguration:", "#   checks-bundle")))
    assert yaml.safe_load(alternative) == {
        "misconfiguration": {"checks-bundle-repository": "mirror.example:5000/aquasec/trivy-checks:2"}}
    assert any("plain HTTP" in note for note in config.warnings())
    assert any("SSL_CERT_FILE=/etc/ca.pem" in note for note in config.warnings())


def test_repository_yaml() -> None:
    config = _config("https://mirror.example", credentials=client_credentials("u", "p"), insecure=True)
    repositories = yaml.safe_load(repository_yaml(config))["repositories"]
    assert repositories == [
        {"name": "vexhub", "url": "https://mirror.example/vex/vexhub", "enabled": True, "username": "u",
         "password": "p", "insecure": True},
        {"name": "default", "url": "https://github.com/aquasecurity/vexhub", "enabled": False},
    ]


def test_env_and_flags_quote_and_agree() -> None:
    config = _config("https://mirror.example", credentials=client_credentials("bob", "it's $ecret"))
    env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
               for line in env_lines(config).splitlines() if line.startswith("export "))
    assert env["TRIVY_PASSWORD"] == "it's $ecret" and env["TRIVY_DISABLE_TELEMETRY"] == "true"
    assert "TRIVY_INSECURE" not in env and "TRIVY_VEX" not in env  # VEX needs repository.yaml installed first
    flags = shlex.split(flag_line(config))
    assert flags[flags.index("--password") + 1] == "it's $ecret"
    assert flags[flags.index("--db-repository") + 1] == env["TRIVY_DB_REPOSITORY"]


def test_vex_config_path() -> None:
    assert vex_config_path({"XDG_DATA_HOME": "/data"}) == Path("/data/.trivy/vex/repository.yaml")
    assert vex_config_path({}) == Path.home() / ".trivy" / "vex" / "repository.yaml"


def test_select_vex_enables_what_is_served_or_refuses_what_is_not() -> None:
    assert select_vex(["alpha", "zeta"], [], "the mirror") == ("alpha", "zeta")
    assert select_vex(["alpha", "zeta"], ["zeta", "alpha", "zeta"], "the mirror") == ("zeta", "alpha")
    assert select_vex([], [], "the mirror") == ()
    with pytest.raises(UsageError, match=r"--vex-repo vexhub: the mirror does not serve .*it serves alpha, zeta"):
        select_vex(["alpha", "zeta"], ["vexhub"], "the mirror")
    with pytest.raises(UsageError, match="it serves none"):
        select_vex([], ["vexhub"], "the mirror")


def test_trivy_yaml_without_vex_and_with_basic_credentials() -> None:
    mirror = parse_mirror("harbor.example/trivy")
    document = yaml.safe_load(trivy_yaml(ClientConfig(mirror, client_credentials("u", "p"))))
    assert "vulnerability" not in document
    assert document["registry"] == {"mirrors": {"mirror.gcr.io": ["harbor.example/trivy"]}, "username": ["u"],
                                    "password": ["p"]}
    repositories = yaml.safe_load(repository_yaml(ClientConfig(mirror)))["repositories"]
    assert repositories == [{"name": "default", "url": "https://github.com/aquasecurity/vexhub", "enabled": False}]
