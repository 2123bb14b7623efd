"""vex-repository.json: what Trivy 0.76 accepts, the spec-0.1 choice, the rewritten manifest, Go durations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.timefmt import parse_go_duration
from trivy_mirror.vex.manifest import RepositoryManifest

VEXHUB = {  # verbatim upstream (TRIVY-ASSETS.md section 7.4)
    "name": "VEX Hub", "description": "VEX Repository by Aqua Security",
    "versions": [{"spec_version": "0.1",
                  "locations": [{"url": "https://github.com/aquasecurity/vexhub/archive/refs/heads/main.tar.gz"
                                        "//vexhub-main"}],
                  "update_interval": "24h",
                  "repository_specific": {"location": {"repository_type": "db", "db_type": "bbolt",
                                                       "url": "oci://ghcr.io/example.com/vex-db:0"}}}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def test_vexhub_manifest_parses_and_rewrites_to_one_location() -> None:
    manifest = RepositoryManifest.parse(json.dumps(VEXHUB).encode())
    version = manifest.version()
    assert version.locations == (VEXHUB["versions"][0]["locations"][0]["url"],)  # type: ignore[index]
    assert version.interval_seconds == 86400
    served = manifest.served("http://mirror:5000/vex/vexhub/archive.tar.gz")
    assert served == {"name": "VEX Hub", "description": "VEX Repository by Aqua Security",
                      "versions": [{"spec_version": "0.1",
                                    "locations": [{"url": "http://mirror:5000/vex/vexhub/archive.tar.gz"}],
                                    "update_interval": "24h"}]}


def test_first_exact_spec_version_wins() -> None:
    document: dict[str, Any] = {**VEXHUB, "versions": [
        {"spec_version": "0.2", "locations": [{"url": "https://a/x.tar.gz"}], "update_interval": "1h"},
        {"spec_version": "0.1", "locations": [{"url": "https://b/x.tar.gz"}], "update_interval": "2h"},
        {"spec_version": "0.1", "locations": [{"url": "https://c/x.tar.gz"}], "update_interval": "3h"},
    ]}
    assert RepositoryManifest.from_json(document).version().locations == ("https://b/x.tar.gz",)


@pytest.mark.parametrize(("change", "message"), [
    ({"name": None}, "name is missing"),
    ({"description": 3}, "description must be a string"),
    ({"versions": []}, "versions must be a non-empty list"),
    ({"versions": {"v0": {}}}, "versions must be a non-empty list"),
    ({"versions": [{"spec_version": "0.1", "locations": [], "update_interval": "24h"}]}, "locations must be"),
    ({"versions": [{"spec_version": "0.1", "locations": [{"href": "x"}], "update_interval": "24h"}]},
     "locations[0] must be an object with a url"),
    ({"versions": [{"spec_version": "0.1", "locations": [{"url": "https://x/a.zip"}], "update_interval": "1d"}]},
     "update_interval: '1d' is not a Go duration"),
    ({"versions": [{"spec_version": "v0.1", "locations": [{"url": "https://x/a.zip"}], "update_interval": "1h"}]},
     "offers spec versions 'v0.1'; Trivy needs '0.1'"),
])
def test_invalid_manifests_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RefusedCandidate, match="^.*" + message.replace("[", r"\[").replace("]", r"\]")):
        RepositoryManifest.from_json({**VEXHUB, **change}).version()


def test_not_json_is_refused_in_one_line() -> None:
    with pytest.raises(RefusedCandidate) as caught:
        RepositoryManifest.parse(b"<html>\nnot found\n</html>")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("invalid vex-repository.json: not JSON")


@given(json_values)
def test_any_json_is_parsed_or_refused(document: Any) -> None:
    try:
        manifest = RepositoryManifest.from_json(document)
    except RefusedCandidate:
        return
    assert manifest.versions


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["h", "m", "s", "ms"])), min_size=1, max_size=4),
       st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3))
def test_valid_manifests_round_trip(elements: list[tuple[int, str]], urls: list[str]) -> None:
    interval = "".join(f"{n}{unit}" for n, unit in elements)
    seconds = sum(n * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit] for n, unit in elements)
    document = {"name": "n", "description": "d", "versions": [
        {"spec_version": "0.1", "locations": [{"url": url} for url in urls], "update_interval": interval}]}
    manifest = RepositoryManifest.parse(json.dumps(document).encode())
    assert manifest.version().interval_seconds == pytest.approx(seconds)
    served = manifest.served("https://m/vex/n/archive.tar.gz")["versions"]
    assert served == [{"spec_version": "0.1", "locations": [{"url": "https://m/vex/n/archive.tar.gz"}],
                       "update_interval": interval}]


@pytest.mark.parametrize(("text", "seconds"), [
    ("24h", 86400), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("0", 0), ("+2m", 120), ("250ms", 0.25),
    ("1h0m0s", 3600), ("3µs", 3e-6), ("1.h.5m", 3630),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1d", "24", "-1h", "h", "1h ", " 1h", "1hh", "1..5h", "1e3s", "."])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)
