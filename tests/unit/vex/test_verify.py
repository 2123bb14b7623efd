"""The VEX repositories' check (:mod:`trivy_mirror.vex.verify`): the state parses, the current archive is there
with its digest and size (the hashing itself is the store pass's ``blob_ok``, stubbed here); the repair forgets
what cannot be served."""

from __future__ import annotations

import json
from pathlib import Path

from trivy_mirror.oci.digest import Digest
from trivy_mirror.vex.verify import VexVerifier

ARCHIVE = b"a repacked archive"


def repository(root: Path, name: str = "hub", archive: bytes = ARCHIVE, **current: object) -> Path:
    """``STORE/vex/NAME`` holding ``archive`` as its current version (fields of ``current`` overridden)."""
    directory = root / "vex" / name
    path = directory / "blobs" / "sha256" / Digest.of(archive).hex
    path.parent.mkdir(parents=True)
    path.write_bytes(archive)
    record = {"digest": str(Digest.of(archive)), "size": len(archive), "location": "https://x/a.tar.gz",
              "synced_at": "2026-01-01T00:00:00Z", **current}
    (directory / "repository.json").write_text(json.dumps({"name": name, "current": record}))
    return path


def check(root: Path, *, repair: bool = False, good: bool = True) -> tuple[list[tuple[str, str]], list[Path]]:
    """The problems (kind, detail) and the blob files the store pass was asked about."""
    asked: list[Path] = []

    def blob_ok(path: Path) -> bool:
        asked.append(path)
        return good

    found = VexVerifier(root, repair=repair, blob_ok=blob_ok).run()
    return [(p.kind, p.detail) for p in found.problems], asked


def state(root: Path, name: str = "hub") -> dict[str, object]:
    document: dict[str, object] = json.loads((root / "vex" / name / "repository.json").read_bytes())
    return document


def test_a_sound_repository_asks_the_store_pass_about_its_archive(tmp_path: Path) -> None:
    archive = repository(tmp_path)
    found = VexVerifier(tmp_path, repair=False, blob_ok=lambda path: path == archive).run()
    assert (found.repositories, found.problems) == (1, [])


def test_a_corrupt_archive_is_forgotten_by_the_repair(tmp_path: Path) -> None:
    repository(tmp_path)
    problems, _ = check(tmp_path, good=False)
    assert problems == [("bad-vex-archive", f"archive {Digest.of(ARCHIVE)!s:.19} is corrupt")]
    assert state(tmp_path)["current"] is not None, "a check changes nothing"
    check(tmp_path, repair=True, good=False)
    assert state(tmp_path)["current"] is None
    assert check(tmp_path) == ([], [])


def test_a_missing_archive_and_a_wrong_size(tmp_path: Path) -> None:
    repository(tmp_path, "gone").unlink()
    repository(tmp_path, "short", size=3)
    problems, _ = check(tmp_path)
    assert [detail.split(" ", 2)[2] for _, detail in problems] == [
        "is missing", f"has {len(ARCHIVE)} bytes, expected 3"]


def test_an_invalid_current_record(tmp_path: Path) -> None:
    repository(tmp_path, digest="nope")
    problems, asked = check(tmp_path, repair=True)
    assert problems == [("bad-vex-archive", "the current version's record is invalid")] and asked == []
    assert state(tmp_path)["current"] is None


def test_an_unreadable_state_is_removed_by_the_repair(tmp_path: Path) -> None:
    repository(tmp_path)
    (tmp_path / "vex" / "hub" / "repository.json").write_text("[1]")
    problems, _ = check(tmp_path)
    assert problems == [("bad-vex-state", "cannot be read: not a JSON object")]
    check(tmp_path, repair=True)
    assert not (tmp_path / "vex" / "hub" / "repository.json").exists()


def test_a_directory_with_an_invalid_name_is_not_a_repository(tmp_path: Path) -> None:
    repository(tmp_path, "Not A Name")
    found = VexVerifier(tmp_path, repair=False, blob_ok=lambda _: False).run()
    assert (found.repositories, found.problems) == (0, [])
