"""Per-side TLS settings and the scheme of ``--from``/``--to``: what each flag does, and which one wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import pytest

from trivy_mirror.cli import cli
from trivy_mirror.cli.parsing import connection_options, destination_prefixes, endpoint_schemes
from trivy_mirror.errors import UsageError
from trivy_mirror.http.transport import Transport
from trivy_mirror.oci.place import Place


def _options(command: str, args: list[str]) -> click.Context:
    """The context ``command`` would run in with ``args``, its callbacks (the per-side flags) applied."""
    return cli.commands[command].make_context(command, args)


def test_prefix_keeps_the_scheme_it_names() -> None:
    assert Place.parse("https://registry.internal/team").transport == "https"
    assert Place.parse("http://10.0.0.5:5000").transport == "http"
    assert Place.parse("docker://registry.internal").transport is None
    assert Place.parse("registry.internal/team").transport is None
    assert Place.parse("https://registry.internal/team") == Place.parse("registry.internal/team")
    assert str(Place.parse("http://registry.internal/team")) == "registry.internal/team"


def test_one_side_flag_relaxes_that_side_only(tmp_path: Path) -> None:
    ca, other = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.write_text("x")
    other.write_text("y")
    args = ["--dest-insecure", "--src-ca-file", str(ca), "--ca-file", str(other)]
    with _options("sync", args) as ctx:
        src = connection_options(None, "src", ctx.params["insecure"], ctx.params["ca_file"])
        dest = connection_options(None, "dest", ctx.params["insecure"], ctx.params["ca_file"])
    assert (src.insecure, src.ca_file) == (False, ca)
    assert (dest.insecure, dest.ca_file) == (True, other)


def test_insecure_still_covers_both_sides() -> None:
    with _options("sync", ["--insecure"]) as ctx:
        sides = [connection_options(None, side, ctx.params["insecure"], None) for side in ("src", "dest")]
    assert all(side.insecure for side in sides)


def test_schemes_come_from_the_prefixes_of_their_side() -> None:
    sources = [Place.parse("https://10.0.0.5:5000/aquasec"), Place.parse("ghcr.io/aquasecurity")]
    assert endpoint_schemes(sources) == {"10.0.0.5:5000": "https"}
    assert endpoint_schemes(destination_prefixes("http://registry.internal/trivy")) == {"registry.internal": "http"}
    assert destination_prefixes("static:/srv/trivy") == [] and destination_prefixes(None) == []
    with pytest.raises(UsageError, match="both https:// and http://"):
        endpoint_schemes([Place.parse("https://r.internal/a"), Place.parse("http://r.internal/b")])


@pytest.mark.parametrize(("scheme", "registry", "expected"), [
    ("https", "127.0.0.1:5000", "https://127.0.0.1:5000"),
    ("http", "registry.internal:5000", "http://registry.internal:5000"),
])
def test_a_named_scheme_is_used_without_probing(scheme: str, registry: str, expected: str) -> None:
    transport = Transport(scheme=scheme)
    assert str(asyncio.run(transport.base_url(registry))) == expected
    assert transport.requests == 0


@pytest.mark.parametrize(("command", "flags", "absent"), [
    ("sync", ["--src-insecure", "--dest-insecure", "--src-ca-file", "--dest-ca-file"], []),
    ("copy", ["--src-insecure", "--dest-insecure"], []),
    ("serve", ["--src-insecure", "--src-ca-file"], ["--dest-insecure"]),
    ("status", ["--dest-insecure", "--dest-ca-file"], ["--src-insecure"]),
    ("import", ["--dest-insecure", "--dest-ca-file"], ["--src-insecure"]),
])
def test_each_command_has_the_flags_of_its_sides(command: str, flags: list[str], absent: list[str]) -> None:
    names = {opt for param in cli.commands[command].params for opt in param.opts}
    assert set(flags) <= names and not set(absent) & names


def test_a_side_flag_has_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIVY_MIRROR_DEST_INSECURE", "1")
    with _options("sync", []) as ctx:
        dest = connection_options(None, "dest", ctx.params["insecure"], None)
        src = connection_options(None, "src", ctx.params["insecure"], None)
    assert (src.insecure, dest.insecure) == (False, True)
