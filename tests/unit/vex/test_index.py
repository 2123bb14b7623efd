"""index.json: PURL ids without version, safe relative .json locations, openvex/csaf, what Trivy can use."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivy_mirror.errors import RefusedCandidate
from trivy_mirror.vex.index import VexIndex, check_location, check_package_id


def index(*packages: dict[str, Any], updated_at: Any = "2026-01-02T03:04:05Z") -> bytes:
    document: dict[str, Any] = {"packages": list(packages)}
    if updated_at is not None:
        document["updated_at"] = updated_at
    return json.dumps(document).encode()


def test_vexhub_shaped_index() -> None:
    parsed = VexIndex.parse(index(
        {"id": "pkg:golang/github.com/aquasecurity/trivy",
         "location": "pkg/golang/github.com/aquasecurity/trivy/trivy.openvex.json"},
        {"id": "pkg:oci/trivy?repository_url=ghcr.io%2Faquasecurity%2Ftrivy",
         "location": "pkg/oci/ghcr.io/aquasecurity/trivy/oci.openvex.json"},
        {"id": "pkg:npm/%40angular/core", "location": "./pkg/npm/angular//core.json", "format": "csaf"},
        {"id": "pkg:pypi/requests", "location": "pkg/npm/angular/core.json", "format": ""},
    ))
    assert parsed.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert [e.format for e in parsed.entries] == ["openvex", "openvex", "csaf", "openvex"]
    assert parsed.documents == ("pkg/golang/github.com/aquasecurity/trivy/trivy.openvex.json",
                                "pkg/npm/angular/core.json", "pkg/oci/ghcr.io/aquasecurity/trivy/oci.openvex.json")


@pytest.mark.parametrize("value", [
    "pkg:pypi/requests@1.0.0", "pkg:pypi/requests#sub", "pkg:deb/debian/curl?arch=amd64", "pypi/requests",
    "pkg:pypi", "pkg:pypi/", "pkg:pypi//requests", "pkg:1abc/x", "pkg:pypi/requests ",
    "pkg:oci/trivy?repository_url=x&tag=latest",
])
def test_ids_that_can_never_match_are_refused(value: str) -> None:
    with pytest.raises(RefusedCandidate, match=r"^invalid index\.json: id"):
        check_package_id(value)


@pytest.mark.parametrize("value", [
    "../outside.json", "pkg/../../etc/passwd.json", "/etc/x.json", "pkg/vex.yaml", "pkg/vex", "pkg/v ex.json",
    "pkg\\vex.json", "", "pkg/%2e%2e/x.json",
])
def test_unsafe_locations_are_refused(value: str) -> None:
    with pytest.raises(RefusedCandidate, match=r"^invalid index\.json: location"):
        check_location(value)


@pytest.mark.parametrize(("document", "message"), [
    (b"{", "not JSON"),
    (b"[]", "must be a JSON object"),
    (index(), "packages is empty"),
    (json.dumps({"packages": {}}).encode(), "packages must be a list"),
    (index({"id": "pkg:pypi/a", "location": "a.json"}, updated_at="yesterday"), "updated_at 'yesterday'"),
    (index({"id": "pkg:pypi/a", "location": "a.json", "format": "spdx"}), "format 'spdx' is not one of"),
    (index({"id": 1, "location": "a.json"}), r"packages\[0\].id must be a string"),
    (index({"id": "pkg:pypi/a"}), r"packages\[0\].location must be a string"),
    (index("x"), r"packages\[0\] must be an object"),
])
def test_bad_indexes_are_refused(document: bytes, message: str) -> None:
    with pytest.raises(RefusedCandidate, match=message):
        VexIndex.parse(document)


def test_updated_at_may_be_absent_or_zero_as_go_decodes_it() -> None:
    assert VexIndex.parse(index({"id": "pkg:pypi/a", "location": "a.json"}, updated_at=None)).updated_at is None
    assert VexIndex.parse(index({"id": "pkg:pypi/a", "location": "a.json"},
                                updated_at="0001-01-01T00:00:00Z")).updated_at is None


@given(st.text(max_size=60))
def test_every_accepted_location_stays_inside(value: str) -> None:
    try:
        normal = check_location(value)
    except RefusedCandidate:
        return
    assert re.fullmatch(r"[a-zA-Z0-9_/.-]+\.json", normal)
    assert not normal.startswith("/")
    assert ".." not in normal.split("/")
    assert "" not in normal.split("/")


@given(st.text(max_size=60))
def test_every_accepted_id_has_no_version(value: str) -> None:
    try:
        check_package_id(value)
    except RefusedCandidate:
        return
    assert value.startswith("pkg:")
    assert "@" not in value and "#" not in value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["packages", "updated_at", "id", "location", "format", "x"]), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_is_parsed_or_refused(document: Any) -> None:
    try:
        parsed = VexIndex.from_json(document)
    except RefusedCandidate:
        return
    assert parsed.entries
