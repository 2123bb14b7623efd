"""The public API behind ``trivy_mirror``'s flat namespace: whole operations with options passed in.

Each function takes the store's lock itself where it writes, includes the VEX repositories the asset names or
``vex`` ask for, and raises only the errors of :mod:`trivy_mirror.errors`. Nothing is read from flags or the
environment: credentials, TLS, retries and timeouts come in a :class:`ClientOptions`, the publish policy's
settings in a :class:`TrustSettings`. Blocking functions run their own event loop; ``async_*`` ones run in the
caller's. The CLI's commands are these functions plus printing.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, overload

from trivy_mirror.bundle import exporting, importing
from trivy_mirror.bundle.exporting import ExportReport
from trivy_mirror.bundle.importer import ImportReport
from trivy_mirror.catalog import assets as catalog
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.policy import DEFAULT_TRUST, TrustSettings
from trivy_mirror.catalog.status import asset_statuses
from trivy_mirror.engine.events import Listener, Progress, item_listener
from trivy_mirror.errors import BundleError, UsageError
from trivy_mirror.mirror.copy import CopyResult, copy_artifact
from trivy_mirror.mirror.endpoints import ConnectionOptions, RegistryPool, StoreDestination, open_destination
from trivy_mirror.mirror.parent import Parent
from trivy_mirror.mirror.pins import AssetTag, PinResult, decide
from trivy_mirror.oci.place import Place
from trivy_mirror.orchestrate import (
    ApproveResult,
    SyncReport,
    VerifyReport,
    approve_and_sync,
    select_vex_sources,
    sync_destination,
    sync_destinations,
    verify_store,
    vex_status_rows,
)
from trivy_mirror.server.audit import AuditState, read_audit
from trivy_mirror.server.census import ClientRecord, census_path, plan_requested_tags, read_records
from trivy_mirror.signing import PublicKey, SigningKey
from trivy_mirror.static import StaticDestination
from trivy_mirror.store import Store, default_store_dir
from trivy_mirror.vex import VexSource
from trivy_mirror.vex.source import check_unique

ClientOptions = ConnectionOptions
"""How to reach the registries of one side: credentials, ``insecure``, a CA file, the retry policy, timeouts."""

Destinations = list[str] | tuple[str, ...]
"""Several destinations at once (a fan-out): a list or tuple, even of one."""


@dataclass(frozen=True)
class FanOutReport:
    """What a sync into several destinations did: one :class:`SyncReport` per destination, in the order given.

    A destination that failed whole (unreachable, locked, no source answering) is a report with one failed
    ``destination`` result; the others went on.
    """

    reports: list[SyncReport]

    @property
    def ok(self) -> bool:
        """Every destination synced without a failed or refused asset."""
        return all(report.ok for report in self.reports)

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "destinations": [report.to_json() for report in self.reports]}


@overload
async def async_sync(*, store: str | Path | None = None, to: str | None = None, sources: Sequence[str | Place] = (),
                     assets: Sequence[str] = (), vex: Sequence[str | VexSource] = (),
                     source_options: ClientOptions | None = None, dest_options: ClientOptions | None = None,
                     dry_run: bool = False, lock_timeout: float = 600.0, keep: int | None = None,
                     public_url: str | None = None, referrers: bool = True, parent: str | Parent | None = None,
                     trust: TrustSettings = DEFAULT_TRUST, requested_tags: bool = True,
                     progress: Progress | None = None) -> SyncReport: ...


@overload
async def async_sync(*, store: str | Path | None = None, to: Destinations, sources: Sequence[str | Place] = (),
                     assets: Sequence[str] = (), vex: Sequence[str | VexSource] = (),
                     source_options: ClientOptions | None = None, dest_options: ClientOptions | None = None,
                     dry_run: bool = False, lock_timeout: float = 600.0, keep: int | None = None,
                     public_url: str | None = None, referrers: bool = True, parent: str | Parent | None = None,
                     trust: TrustSettings = DEFAULT_TRUST, requested_tags: bool = True,
                     progress: Progress | None = None) -> FanOutReport: ...


async def async_sync(*, store: str | Path | None = None, to: str | Destinations | None = None,
                     sources: Sequence[str | Place] = (), assets: Sequence[str] = (),
                     vex: Sequence[str | VexSource] = (), source_options: ClientOptions | None = None,
                     dest_options: ClientOptions | None = None, dry_run: bool = False, lock_timeout: float = 600.0,
                     keep: int | None = None, public_url: str | None = None, referrers: bool = True,
                     parent: str | Parent | None = None, trust: TrustSettings = DEFAULT_TRUST,
                     requested_tags: bool = True, progress: Progress | None = None) -> SyncReport | FanOutReport:
    """:func:`sync` in the running event loop."""
    specs = _select(assets)
    the_parent = Parent.parse(parent) if isinstance(parent, str) else parent
    prefixes = _sources(sources, the_parent)
    vex_sources = _vex_sources(vex, assets, the_parent)
    vex_parent = the_parent if the_parent is not None and (not assets or "vex" in assets) else None
    plan = plan_requested_tags if requested_tags else _as_given
    source_options, dest_options = source_options or ClientOptions(), dest_options or ClientOptions()
    if isinstance(to, list | tuple):
        if store is not None:
            raise UsageError("--store and --to cannot be used together")
        return FanOutReport(await sync_destinations(
            list(to), specs, prefixes, source_options, dest_options, dry_run=dry_run, lock_timeout=lock_timeout,
            vex=vex_sources, public_url=public_url, keep=keep, plan=plan, progress=progress, vex_parent=vex_parent,
            referrers=referrers, trust=trust))
    return await sync_destination(
        specs, prefixes, source_options, dest_options, Path(store) if store is not None else None, to,
        dry_run=dry_run, lock_timeout=lock_timeout, vex=vex_sources, public_url=public_url, keep=keep, plan=plan,
        progress=progress, vex_parent=vex_parent, referrers=referrers, trust=trust)


@overload
def sync(*, store: str | Path | None = None, to: str | None = None, sources: Sequence[str | Place] = (),
         assets: Sequence[str] = (), vex: Sequence[str | VexSource] = (), source_options: ClientOptions | None = None,
         dest_options: ClientOptions | None = None, dry_run: bool = False, lock_timeout: float = 600.0,
         keep: int | None = None, public_url: str | None = None, referrers: bool = True,
         parent: str | Parent | None = None, trust: TrustSettings = DEFAULT_TRUST,
         requested_tags: bool = True, progress: Progress | None = None) -> SyncReport: ...


@overload
def sync(*, store: str | Path | None = None, to: Destinations, sources: Sequence[str | Place] = (),
         assets: Sequence[str] = (), vex: Sequence[str | VexSource] = (), source_options: ClientOptions | None = None,
         dest_options: ClientOptions | None = None, dry_run: bool = False, lock_timeout: float = 600.0,
         keep: int | None = None, public_url: str | None = None, referrers: bool = True,
         parent: str | Parent | None = None, trust: TrustSettings = DEFAULT_TRUST,
         requested_tags: bool = True, progress: Progress | None = None) -> FanOutReport: ...


def sync(*, store: str | Path | None = None, to: str | Destinations | None = None, sources: Sequence[str | Place] = (),
         assets: Sequence[str] = (), vex: Sequence[str | VexSource] = (), source_options: ClientOptions | None = None,
         dest_options: ClientOptions | None = None, dry_run: bool = False, lock_timeout: float = 600.0,
         keep: int | None = None, public_url: str | None = None, referrers: bool = True,
         parent: str | Parent | None = None, trust: TrustSettings = DEFAULT_TRUST,
         requested_tags: bool = True, progress: Progress | None = None) -> SyncReport | FanOutReport:
    """Mirror Trivy's assets into the store (``store``, or the default) or ``to`` a registry prefix or
    ``static:DIR``, from ``sources`` (registry prefixes, tried in order; Trivy's own by default).

    ``assets`` names the assets (all OCI assets when empty; ``vex`` adds VEX Hub), ``vex`` the VEX repositories
    as ``[NAME=]URL``. The report holds one result per asset tag; a failed asset does not raise (``report.ok``
    is false), a usage error or no source answering at all does.

    ``to`` as a list or tuple is a fan-out: every destination is written at once, each source blob read once, and
    a :class:`FanOutReport` (one report per destination) is returned; one destination failing does not stop the
    others. ``public_url`` (where a static tree is served) and ``keep`` (versions kept) apply to a static tree,
    ``keep`` also to the store. ``referrers`` copies the assets' referrers (not into a static tree). ``parent`` is
    a central trivy-mirror serve (``http(s)://HOST[:PORT]``): its assets are tried first, and its VEX repositories
    are mirrored too (VEX Hub is then not the default). ``trust`` holds the publish policy's settings (holds,
    quorum, sanity checks, provenance); ``requested_tags`` adds, as optional tags, the tags the clients of a
    ``serve`` on the store asked for and got a 404 on (its census). ``async_sync`` also takes a ``progress``
    listener (the engine's event stream).
    """
    if isinstance(to, list | tuple):
        return asyncio.run(async_sync(store=store, to=to, sources=sources, assets=assets, vex=vex,
                                      source_options=source_options, dest_options=dest_options, dry_run=dry_run,
                                      lock_timeout=lock_timeout, keep=keep, public_url=public_url,
                                      referrers=referrers, parent=parent, trust=trust, requested_tags=requested_tags,
                                      progress=progress))
    return asyncio.run(async_sync(store=store, to=to, sources=sources, assets=assets, vex=vex,
                                  source_options=source_options, dest_options=dest_options, dry_run=dry_run,
                                  lock_timeout=lock_timeout, keep=keep, public_url=public_url, referrers=referrers,
                                  parent=parent, trust=trust, requested_tags=requested_tags, progress=progress))


def _as_given(specs: Sequence[catalog.AssetSpec], _root: Path) -> Sequence[catalog.AssetSpec]:
    return specs


def _sources(values: Sequence[str | Place], parent: Parent | None) -> list[Place]:
    """The sources in order: Trivy's own when none is given; a parent's prefix first unless named already."""
    prefixes = [Place.parse_registry(value) if isinstance(value, str) else value for value in values]
    if parent is None:
        return prefixes or list(catalog.DEFAULT_SOURCES)
    return prefixes if parent.prefix in prefixes else [parent.prefix, *prefixes]


def _vex_sources(values: Sequence[str | VexSource], assets: Sequence[str], parent: Parent | None) -> list[VexSource]:
    """The VEX repositories named; without any, VEX Hub for the asset ``vex``, unless a parent provides them."""
    if not values:
        return [] if parent is not None else select_vex_sources((), assets)
    sources = [VexSource.parse(value) if isinstance(value, str) else value for value in values]
    check_unique(sources)
    return sources


@dataclass(frozen=True)
class StatusReport:
    """What a destination serves: one row per asset tag (and, in a store or static tree, per VEX repository);
    for the store also what its ``serve`` recorded: the clients' census and the last integrity audit."""

    destination: str
    assets: list[AssetStatus]
    clients: list[ClientRecord] | None = None
    """The census of a ``serve`` on the store, by Trivy version (None for a registry or static tree)."""
    integrity: AuditState | None = None
    """The last audit of a ``serve`` on the store (None when none ran)."""

    @property
    def damaged(self) -> bool:
        """The audit found a problem no repair removed."""
        return bool(self.integrity and self.integrity.outstanding)

    def to_json(self) -> dict[str, object]:
        """The document of ``trivy-mirror status --json``."""
        document: dict[str, object] = {"assets": [row.to_json() for row in self.assets]}
        if self.clients is not None:
            document["clients"] = [record.to_json() for record in self.clients]
        if self.integrity is not None:
            document["integrity"] = self.integrity.to_json()
        return document


async def async_status(*, store: str | Path | None = None, to: str | None = None, assets: Sequence[str] = (),
                       options: ClientOptions | None = None) -> StatusReport:
    """:func:`status` in the running event loop."""
    specs = _select(assets)
    async with RegistryPool(options or ClientOptions()) as pool:
        target = open_destination(Path(store) if store is not None else None, to, pool)
        rows = await asset_statuses(target, specs) if specs else []
    if isinstance(target, StoreDestination):
        root = target.store.root
        return StatusReport(target.label, rows + vex_status_rows(target.store, assets),
                            read_records(census_path(root)), read_audit(root))
    if isinstance(target, StaticDestination):
        rows += vex_status_rows(target.tree.work, assets)
    return StatusReport(target.label, rows)


def status(*, store: str | Path | None = None, to: str | None = None, assets: Sequence[str] = (),
           options: ClientOptions | None = None) -> StatusReport:
    """What the destination serves for each asset (and, in a store or static tree, each VEX repository: those
    stored, plus VEX Hub when ``assets`` names ``vex``), and its state: ``fresh``, ``stale`` or ``missing``
    (``report.assets``, the rows of ``trivy-mirror status --json``); for the store also the census and the
    integrity audit its ``serve`` recorded."""
    return asyncio.run(async_status(store=store, to=to, assets=assets, options=options))


def _select(names: Sequence[str]) -> list[catalog.AssetSpec]:
    """The OCI assets named (all when none is; none when only ``vex`` is)."""
    return catalog.select(list(names)) if not names or set(names) - {"vex"} else []


async def async_copy(src: str, dst: str, *, source_options: ClientOptions | None = None,
                     dest_options: ClientOptions | None = None, referrers: bool = False,
                     progress: Progress | None = None) -> CopyResult:
    """:func:`copy` in the running event loop."""
    return await copy_artifact(src, dst, source_options or ClientOptions(), dest_options or ClientOptions(),
                               referrers=referrers, progress=progress)


def copy(src: str, dst: str, *, source_options: ClientOptions | None = None, dest_options: ClientOptions | None = None,
         referrers: bool = False, progress: Progress | None = None) -> CopyResult:
    """Copy one artifact, byte for byte, from ``src`` to ``dst``: registry references (``HOST/REPO:TAG``,
    ``HOST/REPO@sha256:...``, ``https://`` or ``http://`` in front to fix the transport) or ``oci-layout:DIR:TAG``.

    With ``referrers`` the manifests referring to it go too (signatures, attestations). The result says what was
    copied: the digest, ``copied`` or ``unchanged`` and the counts. A failure raises :class:`~trivy_mirror.errors.
    CopyError` naming the side that failed (or a :class:`~trivy_mirror.errors.UsageError` for a bad place).
    ``progress`` sees the transfers of blobs of 1 MiB and more.
    """
    return asyncio.run(async_copy(src, dst, source_options=source_options, dest_options=dest_options,
                                  referrers=referrers, progress=progress))


async def async_export_bundle(output: str | Path | BinaryIO, *, store: str | Path | None = None,
                              assets: Sequence[str] = (), sign: str | Path | None = None,
                              progress: Progress | None = None) -> ExportReport:
    """:func:`export_bundle` in the running event loop."""
    key = SigningKey.load(Path(sign)) if sign is not None else None
    specs = catalog.select(list(assets))
    vex = "vex" in assets if assets else None
    root = Store(Path(store) if store is not None else default_store_dir())
    return await exporting.export_bundle(Path(output) if isinstance(output, str | Path) else output, root, specs, vex,
                               key=key, events=_items(progress))


def export_bundle(output: str | Path | BinaryIO, *, store: str | Path | None = None, assets: Sequence[str] = (),
                  sign: str | Path | None = None, progress: Progress | None = None) -> ExportReport:
    """Write the current version of the store's assets into one bundle, a file (``output``, written next to it
    then renamed) or a binary stream, to carry across an air gap; :func:`import_bundle` reads it.

    ``assets`` names the assets (all OCI assets and the VEX repositories the store has when empty; ``vex`` for
    every VEX repository, at least one); ``sign`` a private key file (from ``trivy-mirror keygen``) that signs
    the bundle. ``progress`` sees the writing as one transfer, named after the bundle. The
    report holds the bundle's manifest (an entry per asset tag and VEX repository), its sha256 and the signing
    key's id.
    """
    return asyncio.run(async_export_bundle(output, store=store, assets=assets, sign=sign, progress=progress))


async def async_import_bundle(bundle: str | Path | BinaryIO, *, store: str | Path | None = None, to: str | None = None,
                              options: ClientOptions | None = None, verify_key: str | Path | None = None,
                              sha256: str | None = None, allow_downgrade: bool = False, lock_timeout: float = 600.0,
                              public_url: str | None = None, keep: int | None = None,
                              trust: TrustSettings = DEFAULT_TRUST, progress: Progress | None = None) -> ImportReport:
    """:func:`import_bundle` in the running event loop."""
    key = PublicKey.load(Path(verify_key)) if verify_key is not None else None
    expected = sha256.lower().removeprefix("sha256:") if sha256 is not None else None
    with contextlib.ExitStack() as stack:
        if isinstance(bundle, str | Path):
            try:
                bundle = stack.enter_context(await asyncio.to_thread(Path(bundle).open, "rb"))
            except OSError as err:
                raise BundleError(f"cannot read the bundle {bundle}: {err.strerror or err}") from None
        return await importing.import_bundle(
            bundle, Path(store) if store is not None else None, to, options or ClientOptions(),
            allow_downgrade=allow_downgrade, expected_sha256=expected, lock_timeout=lock_timeout,
            public_url=public_url, keep=keep, verify_key=key, trust=trust, events=_items(progress))


def import_bundle(bundle: str | Path | BinaryIO, *, store: str | Path | None = None, to: str | None = None,
                  options: ClientOptions | None = None, verify_key: str | Path | None = None,
                  sha256: str | None = None, allow_downgrade: bool = False, lock_timeout: float = 600.0,
                  public_url: str | None = None, keep: int | None = None, trust: TrustSettings = DEFAULT_TRUST,
                  progress: Progress | None = None) -> ImportReport:
    """Import a bundle made by :func:`export_bundle` (a file or a binary stream) into the store (``store``, or
    the default) or ``to`` a registry prefix (reached with ``options``) or ``static:DIR``, taking its lock.

    Every member is verified while it is read into a staging directory; nothing becomes visible unless the
    whole bundle passed, so a refused bundle (damaged, hostile, older than what is served without
    ``allow_downgrade``, not the expected ``sha256``, not signed by the holder of ``verify_key``, a public key
    file) leaves the destination unchanged and raises. ``trust`` sets the sanity checks (``max_shrink``,
    ``check_archive``; a pin always applies): an asset they hold fails the import (:class:`~trivy_mirror.errors.
    RefusedCandidate`) and is recorded as the held candidate; ``quorum`` and ``holds`` do not apply to a bundle,
    one source imported at once. ``progress`` sees the reading as one transfer, and each
    asset's layer pushed into a registry as one more. The report holds one result per asset tag and VEX
    repository (``updated``, ``unchanged`` or ``skipped``).
    """
    return asyncio.run(async_import_bundle(bundle, store=store, to=to, options=options, verify_key=verify_key,
                                           sha256=sha256, allow_downgrade=allow_downgrade,
                                           lock_timeout=lock_timeout, public_url=public_url, keep=keep,
                                           trust=trust, progress=progress))


def _items(progress: Progress | None) -> Listener | None:
    """The bundle's named transfers (:class:`~trivy_mirror.engine.events.Item` events) as ``progress`` calls."""
    return item_listener(progress) if progress is not None else None


def verify(*, store: str | Path | None = None, repair: bool = False, lock_timeout: float = 600.0) -> VerifyReport:
    """Check the store (``store``, or the default): every blob re-hashed, every tag resolving to a complete
    manifest, every VEX archive matching its digest, no link in place of a control file or directory.

    Without ``repair`` nothing changes and no lock is taken (it can run beside ``serve``). With it, the store's
    lock is held (waiting up to ``lock_timeout`` seconds) while what is corrupt is removed (blobs, tags whose
    manifest is incomplete, damaged VEX archives, links) so the next sync restores it, and the store is checked
    again. The report's ``ok``: sound, or every problem repaired. StoreError when there is no store there.
    """
    return verify_store(Store(Path(store) if store is not None else default_store_dir()), repair=repair,
                        lock_timeout=lock_timeout)


async def async_pin(asset: str, digest: str, *, store: str | Path | None = None, to: str | None = None,
                    options: ClientOptions | None = None, by: str | None = None, reason: str | None = None,
                    lock_timeout: float = 600.0) -> PinResult:
    """:func:`pin` in the running event loop."""
    return await decide("pin", AssetTag.parse(asset), options or ClientOptions(), _path(store), to, digest=digest,
                        by=_who(by), reason=reason or "", lock_timeout=lock_timeout)


def pin(asset: str, digest: str, *, store: str | Path | None = None, to: str | None = None,
        options: ClientOptions | None = None, by: str | None = None, reason: str | None = None,
        lock_timeout: float = 600.0) -> PinResult:
    """Serve ``digest`` under ``asset``'s tag (``db``, ``java-db``, ``checks:1``: an asset, optionally with a
    tag) in the store (``store``, or the default) or ``to`` a registry prefix, and freeze it there: syncs keep
    looking at the sources and report what they would publish, but the tag stays until :func:`unpin`.

    The digest must be in the destination already (a store keeps ``keep`` versions); the pin is recorded in its
    state with ``by`` (default: the login name of the user running it), the time and ``reason``. The store's
    lock is taken (waiting up to ``lock_timeout`` seconds). UsageError for a malformed digest or a static tree,
    NotFound when the destination does not hold the digest, RefusedCandidate when it is no Trivy artifact.
    """
    return asyncio.run(async_pin(asset, digest, store=store, to=to, options=options, by=by, reason=reason,
                                 lock_timeout=lock_timeout))


async def async_unpin(asset: str, *, store: str | Path | None = None, to: str | None = None,
                      options: ClientOptions | None = None, lock_timeout: float = 600.0) -> PinResult:
    """:func:`unpin` in the running event loop."""
    return await decide("unpin", AssetTag.parse(asset), options or ClientOptions(), _path(store), to,
                        lock_timeout=lock_timeout)


def unpin(asset: str, *, store: str | Path | None = None, to: str | None = None, options: ClientOptions | None = None,
          lock_timeout: float = 600.0) -> PinResult:
    """Remove ``asset``'s pin (see :func:`pin`): the next sync publishes what the sources offer again.
    UsageError when it is not pinned."""
    return asyncio.run(async_unpin(asset, store=store, to=to, options=options, lock_timeout=lock_timeout))


async def async_rollback(asset: str, *, store: str | Path | None = None, to: str | None = None,
                         options: ClientOptions | None = None, by: str | None = None, reason: str | None = None,
                         lock_timeout: float = 600.0) -> PinResult:
    """:func:`rollback` in the running event loop."""
    return await decide("rollback", AssetTag.parse(asset), options or ClientOptions(), _path(store), to,
                        by=_who(by), reason=reason or "", lock_timeout=lock_timeout)


def rollback(asset: str, *, store: str | Path | None = None, to: str | None = None,
             options: ClientOptions | None = None, by: str | None = None, reason: str | None = None,
             lock_timeout: float = 600.0) -> PinResult:
    """Serve the previous kept version of ``asset`` and pin it (as :func:`pin`, ``reason`` defaulting to the
    digest rolled back from): the newest older version the store keeps or, for a registry, the newest digest
    published earlier that it still has. NotFound when there is none."""
    return asyncio.run(async_rollback(asset, store=store, to=to, options=options, by=by, reason=reason,
                                      lock_timeout=lock_timeout))


async def async_approve(asset: str, digest: str | None = None, *, store: str | Path | None = None,
                        to: str | None = None, sources: Sequence[str | Place] = (),
                        source_options: ClientOptions | None = None, dest_options: ClientOptions | None = None,
                        lock_timeout: float = 600.0) -> ApproveResult:
    """:func:`approve` in the running event loop."""
    return await approve_and_sync(AssetTag.parse(asset), digest, _sources(sources, None),
                                  source_options or ClientOptions(), dest_options or ClientOptions(), _path(store),
                                  to, lock_timeout=lock_timeout)


def approve(asset: str, digest: str | None = None, *, store: str | Path | None = None, to: str | None = None,
            sources: Sequence[str | Place] = (), source_options: ClientOptions | None = None,
            dest_options: ClientOptions | None = None, lock_timeout: float = 600.0) -> ApproveResult:
    """Publish ``asset``'s candidate held by a hold or a sanity check now: record the approval of ``digest``
    (default: the held candidate), then sync that one asset tag from ``sources`` (Trivy's own by default); the
    policy's refusals still apply, the quorum does not. ``result.published`` says whether the destination then
    serves it. A candidate an import or a push brought is not synced: ``result.delivered`` says where it came
    from, and importing or pushing it again publishes it. UsageError when there is nothing to approve or the
    tag is pinned to another digest.
    """
    return asyncio.run(async_approve(asset, digest, store=store, to=to, sources=sources,
                                     source_options=source_options, dest_options=dest_options,
                                     lock_timeout=lock_timeout))


def _path(store: str | Path | None) -> Path | None:
    return Path(store) if store is not None else None


def _who(by: str | None) -> str:
    """``by``, else the login name of whoever runs it (recorded with the pin)."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
