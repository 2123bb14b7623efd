"""A store already holding the current DB, and a registry holding a newer one: the start of every fault and
crash scenario (the next sync must either land the newer DB whole or keep the current one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.cli import MirrorCli
from support.registry import RegistryProcess, push_artifact
from support.trivy_assets import DB_REPOSITORY, Artifact, AssetSet, build_vuln_db, sha256_digest
from trivy_mirror.store import Store


@dataclass(frozen=True)
class NewerSource:
    base_store: Path
    """A store synced once with the current DB; tests copy it before changing anything."""
    old: Artifact
    new: Artifact
    source: RegistryProcess
    """A registry holding ``new`` as ``aquasec/trivy-db:2``."""

    @property
    def layer(self) -> str:
        return sha256_digest(self.new.layers[0])


@contextmanager
def newer_source(workdir: Path, upstream: RegistryProcess, assets: AssetSet,
                 filler_bytes: int) -> Iterator[NewerSource]:
    cli = MirrorCli(workdir / "home")
    result = cli.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(workdir / "store"),
                      "--assets", "db"])
    assert result.returncode == 0, result.stderr
    new = build_vuln_db(updated_at=datetime.now(UTC) + timedelta(minutes=5), filler_bytes=filler_bytes)
    with RegistryProcess(workdir / "source") as source:
        push_artifact(source.host, DB_REPOSITORY, "2", new)
        yield NewerSource(workdir / "store", assets.db, new, source)


def served_digest(store: Path) -> str | None:
    """The digest the store's ``aquasec/trivy-db:2`` points at, or None."""
    tags = Store(store).layout(DB_REPOSITORY).tags()
    return str(tags["2"].digest) if "2" in tags else None
