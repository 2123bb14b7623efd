"""The air gap: ``keygen``, ``export``, ``import`` and ``trivy-cache``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import click

from trivy_mirror.cli import options
from trivy_mirror.cli.parsing import (
    asset_selection,
    connection_options,
    destination_prefixes,
    parse_assets,
    run,
    static_settings,
    trust_settings,
)

ASSETS_HELP = (f"Comma-separated assets: {options.asset_list('vex')} (every VEX repository of the store). "
               f"[default: all the OCI assets, and the VEX repositories the store has]")


@click.command("keygen")
@click.argument("keyfile", metavar="KEYFILE", type=click.Path(path_type=Path, dir_okay=False))
def keygen(keyfile: Path) -> None:
    """Create an Ed25519 key pair to sign bundles: KEYFILE (private) and KEYFILE.pub.

    KEYFILE is a PKCS#8 PEM private key written with mode 0600; keep it on the connected side, where
    export --sign KEYFILE uses it. KEYFILE.pub (PEM SubjectPublicKeyInfo) goes to the isolated side out of
    band, where import --verify-key KEYFILE.pub checks bundles with it. Existing files are never overwritten.
    The key id (sha256 of the public key, hex), which messages and signatures name the key by, is printed
    on stdout.

    \b
    Example:
      trivy-mirror keygen /etc/trivy-mirror/bundle-signing.key
    """
    from trivy_mirror.commands.keygen import run_keygen

    sys.exit(run_keygen(keyfile))


@click.command("export")
@click.argument("bundle", metavar="BUNDLE.tar")
@options.store()
@options.assets(ASSETS_HELP)
@click.option("--sign", "sign_key", metavar="KEYFILE", type=click.Path(path_type=Path, dir_okay=False),
              envvar="TRIVY_MIRROR_SIGN_KEY",
              help="Sign the bundle with this private key (from keygen): import --verify-key checks it.")
@options.json_output("Print a JSON summary (sha256, assets) on stdout.")
def export(bundle: str, store: Path | None, asset_names: str | None, sign_key: Path | None, as_json: bool) -> None:
    """Write the store's current assets into one bundle file to carry across an air gap.

    The bundle is a plain tar: a manifest (trivy-mirror-bundle.json: per asset the reference, digest, size,
    source, UpdatedAt and NextUpdate; the tool version and creation time) followed by an OCI image layout per
    asset under oci/ and each VEX repository's archive under vex/. It is streamed straight from the store,
    never copied twice, and every blob is checked against its digest on the way. Use - as BUNDLE.tar to write
    to stdout.

    At the end the bundle's sha256 is printed on stdout in sha256sum's format (on stderr with -), so the file
    can be checked after the transfer with sha256sum -c or import --sha256.

    With --sign KEYFILE the bundle also carries trivy-mirror-bundle.dsse.json, right after the manifest: a
    DSSE envelope signing an in-toto statement whose subjects are every asset's digest (OCI manifest, VEX
    archive) and the manifest's own digest, so the signature covers every member.

    \b
    Examples:
      trivy-mirror export trivy-assets.tar > trivy-assets.tar.sha256
      trivy-mirror export --assets db,java-db /media/usb/trivy-db.tar
      trivy-mirror export --sign bundle-signing.key /media/usb/trivy-assets.tar
      trivy-mirror export - | ssh gateway.isolated 'trivy-mirror import -'
    """
    from trivy_mirror.commands.export import run_export

    sys.exit(run(run_export(bundle, store, parse_assets(asset_names), as_json=as_json, sign=sign_key)))


@click.command("import")
@click.argument("bundle", metavar="BUNDLE.tar", type=click.File("rb"))
@options.destination("Push into this registry instead of the store, as sync --to does: assets land at "
                     "REGISTRY/PREFIX/aquasec/trivy-db:2 and so on; static:DIR writes a static registry tree.")
@options.transport("Skip TLS verification and allow plain HTTP to any --to host (loopback and RFC 1918 hosts may "
                   "use plain HTTP without it).", "PEM file of extra CA certificates to trust for --to.",
                   sides=("dest",))
@click.option("--sha256", "expected_sha256", metavar="DIGEST",
              help="Refuse the bundle unless its sha256 is this one: the digest export printed, or its whole "
                   "sha256sum line (--sha256 \"$(cat BUNDLE.tar.sha256)\").")
@click.option("--verify-key", metavar="PUBFILE", type=click.Path(path_type=Path, dir_okay=False),
              help="Refuse the bundle unless it is signed by this public key (KEYFILE.pub from keygen) and its "
                   "contents are exactly those signed.")
@click.option("--allow-downgrade", is_flag=True,
              help="Import assets older than those the destination serves (by default the bundle is refused).")
@options.sanity
@options.json_output()
@options.lock_timeout("Seconds to wait for a sync or import holding the store.")
@options.static_tree("import", "With --to static:DIR: the URL the tree is served at; VEX manifests name their "
                               "archive under it (without it, and none remembered in the tree, VEX repositories "
                               "are skipped).")
@click.pass_context
def import_(ctx: click.Context, bundle: BinaryIO, store: Path | None, destination: str | None,
            dest_creds: str | None, insecure: bool, ca_file: Path | None, expected_sha256: str | None,
            verify_key: Path | None, allow_downgrade: bool, max_shrink: float, check_archive: bool, as_json: bool,
            lock_timeout: float, public_url: str | None, keep: int | None) -> None:
    """Import a bundle made by export into the store (then serve it) or into a registry.

    Every member is verified against the bundle manifest while it is read, into a staging directory; only
    when the whole bundle is read and every asset passed the checks sync applies (Trivy's artifact rules,
    schema versions) does anything become visible, each tag moving atomically. A truncated, damaged or
    tampered bundle, or one with hostile members (absolute paths, '..', links, devices, duplicates, sizes
    that disagree with the manifest), fails with one line and leaves the destination untouched.

    With --verify-key PUBFILE the bundle is refused (one line, nothing written) unless it is signed by that
    key and its assets and manifest are exactly those signed: unsigned, signed by another key, a signature
    that does not verify, an asset the key did not sign or a signed asset missing. The signature is checked
    before any member is read. Without --verify-key a signed bundle imports as an unsigned one (and says so).

    A bundle whose assets are older than those the destination serves is refused unless --allow-downgrade.
    The sanity checks sync applies hold an asset much smaller than the served one (--max-shrink) or a DB layer
    that does not look like a DB (--check-archive), and a pinned tag is not moved: a held asset fails the
    import with one line (nothing is imported) and is recorded as the held candidate, which approve ASSET
    DIGEST lets the next import of the bundle publish. --quorum and --hold do not apply to an import: a
    bundle is one source, imported at once.
    Re-importing the same bundle changes nothing. Use - as BUNDLE.tar to read stdin. Importing into a
    registry (--to) uses the same copy engine as sync --to; the bundle is staged in $TMPDIR first. VEX
    repositories are unpacked and checked again as sync checks a download; a registry holds none, so an
    import --to skips them (and says so). --to static:DIR writes a static registry tree, as sync does, with
    the VEX repositories when the tree has a --public-url.

    \b
    Examples:
      trivy-mirror import /media/usb/trivy-assets.tar --sha256 3f5a...e1
      trivy-mirror import /media/usb/trivy-assets.tar --verify-key bundle-signing.key.pub
      trivy-mirror import trivy-assets.tar --to harbor.isolated/trivy --dest-creds robot:$TOKEN
      ssh connected-host 'trivy-mirror export -' | trivy-mirror import -
    """
    from trivy_mirror.commands.import_ import parse_sha256, run_import

    trust = trust_settings((), max_shrink=max_shrink, check_archive=check_archive)
    connection = connection_options(dest_creds, "dest", insecure, ca_file, destination_prefixes(destination))
    public_url, keep = static_settings(ctx, destination, public_url, keep)
    sys.exit(run(run_import(bundle, store, destination, connection, allow_downgrade=allow_downgrade,
                            expected_sha256=parse_sha256(expected_sha256), as_json=as_json,
                            lock_timeout=lock_timeout, public_url=public_url, keep=keep, verify_key=verify_key,
                            trust=trust)))


@click.command("trivy-cache")
@click.argument("cache_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@options.store()
@options.assets(ASSETS_HELP)
@options.mirror("The trivy-mirror serve (http[s]://HOST:PORT[/PATH]) the VEX repositories should name, instead of "
                "their upstream URLs.")
def trivy_cache(cache_dir: Path, store: Path | None, asset_names: str | None, mirror: str | None) -> None:
    """Write a ready-to-use Trivy cache directory from the store, for scanners with no network at all.

    DIR gets what Trivy itself leaves after downloading: db/{trivy.db,metadata.json},
    java-db/{trivy-java.db,metadata.json} and policy/content/ with policy/metadata.json. DownloadedAt is set
    to now, so even without the --skip-*-update flags Trivy does not try to download the DBs before their
    NextUpdate, nor the checks bundle for 24 hours. Layers are verified and unpacked safely, each directory
    replaced whole; other contents of DIR (Trivy's scan cache) are left alone. Each VEX repository goes to
    vex/repositories/NAME/ as Trivy lays it out, with vex/repository.yaml to install in Trivy's home.

    VEX and update_interval: the cached repositories are dated now. With --skip-vex-repo-update Trivy never
    checks them again (refresh by writing the cache again). Without it, once the repository's update_interval
    (24h for VEX Hub) has passed Trivy fetches the repository from the URL in repository.yaml: the upstream by
    default (fatal in an isolated network), the mirror with --mirror URL (the cache carries the mirror's ETag,
    so an unchanged repository costs a 304; Trivy before 0.73 always gets the whole archive).

    The Trivy command line that uses DIR is printed on stdout.

    \b
    Examples:
      trivy-mirror trivy-cache /srv/trivy-cache
      trivy image --cache-dir /srv/trivy-cache --skip-db-update --skip-java-db-update \\
                  --skip-check-update --offline-scan IMAGE
    """
    from trivy_mirror.commands.trivy_cache import run_trivy_cache

    specs, vex = asset_selection(asset_names)
    sys.exit(run_trivy_cache(cache_dir, store, specs, vex, mirror))


COMMANDS = (keygen, export, import_, trivy_cache)
