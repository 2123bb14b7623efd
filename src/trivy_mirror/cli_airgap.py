"""The air-gap and client commands: ``keygen``, ``export``, ``import``, ``trivy-cache``, ``trivy-config``.

Plain ``click.Command`` objects, added to the main group in :mod:`trivy_mirror.cli`. They parse flags and call
``trivy_mirror.commands``; imports from :mod:`trivy_mirror.cli` happen at call time, so either module may
import the other first.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import BinaryIO

import click

from trivy_mirror.catalog import assets

STORE_HELP = "Local store directory [default: $TRIVY_MIRROR_STORE, else $XDG_DATA_HOME/trivy-mirror/store]."

def _selection(asset_names: str | None) -> tuple[list[assets.AssetSpec], bool | None]:
    """The OCI assets and whether VEX repositories go too: None when --assets is not given (those the store
    has), True when it names vex (there must be one), False otherwise."""
    names = [name.strip() for name in asset_names.split(",") if name.strip()] if asset_names else []
    if not names:
        return assets.select(names), None
    return assets.select(names), "vex" in names


ASSETS_HELP = (f"Comma-separated assets: {', '.join((*assets.OCI_ASSET_NAMES, 'vex'))} (every VEX repository of "
               f"the store). [default: all the OCI assets, and the VEX repositories the store has]")


@click.command("keygen")
@click.argument("keyfile", metavar="KEYFILE", type=click.Path(path_type=Path, dir_okay=False))
def keygen_command(keyfile: Path) -> None:
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
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="TRIVY_MIRROR_STORE",
              help=STORE_HELP)
@click.option("--assets", "asset_names", metavar="LIST", envvar="TRIVY_MIRROR_ASSETS", help=ASSETS_HELP)
@click.option("--sign", "sign_key", metavar="KEYFILE", type=click.Path(path_type=Path, dir_okay=False),
              envvar="TRIVY_MIRROR_SIGN_KEY",
              help="Sign the bundle with this private key (from keygen): import --verify-key checks it.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (sha256, assets) on stdout.")
def export_command(bundle: str, store: Path | None, asset_names: str | None, sign_key: Path | None,
                   as_json: bool) -> None:
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

    specs, vex = _selection(asset_names)
    sys.exit(asyncio.run(run_export(bundle, store, specs, vex, as_json=as_json, sign=sign_key)))


@click.command("import")
@click.argument("bundle", metavar="BUNDLE.tar", type=click.File("rb"))
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="TRIVY_MIRROR_STORE",
              help=STORE_HELP)
@click.option("--to", "destination", metavar="REGISTRY[/PREFIX]|static:DIR", envvar="TRIVY_MIRROR_TO",
              help="Push into this registry instead of the store, as sync --to does: assets land at "
                   "REGISTRY/PREFIX/aquasec/trivy-db:2 and so on; static:DIR writes a static registry tree.")
@click.option("--dest-creds", metavar="USER:PASS",
              help="Credentials for --to (or TRIVY_MIRROR_DEST_USERNAME/_PASSWORD; else docker config.json, "
                   "podman auth.json, anonymous).")
@click.option("--insecure", is_flag=True, envvar="TRIVY_MIRROR_INSECURE",
              help="Skip TLS verification and allow plain HTTP to any --to host (loopback and RFC 1918 hosts may "
                   "use plain HTTP without it).")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="TRIVY_MIRROR_CA_FILE", help="PEM file of extra CA certificates to trust for --to.")
@click.option("--sha256", "expected_sha256", metavar="DIGEST",
              help="Refuse the bundle unless its sha256 is this one: the digest export printed, or its whole "
                   "sha256sum line (--sha256 \"$(cat BUNDLE.tar.sha256)\").")
@click.option("--verify-key", metavar="PUBFILE", type=click.Path(path_type=Path, dir_okay=False),
              envvar="TRIVY_MIRROR_VERIFY_KEY",
              help="Refuse the bundle unless it is signed by this public key (KEYFILE.pub from keygen) and its "
                   "contents are exactly those signed.")
@click.option("--allow-downgrade", is_flag=True,
              help="Import assets older than those the destination serves (by default the bundle is refused).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--lock-timeout", type=float, default=600, show_default=True,
              help="Seconds to wait for a sync or import holding the store.")
@click.option("--public-url", metavar="URL", envvar="TRIVY_MIRROR_PUBLIC_URL",
              help="With --to static:DIR: the URL the tree is served at; VEX manifests name their archive under it "
                   "(without it, and none remembered in the tree, VEX repositories are skipped).")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Versions of each tag the store, or a static tree (--to static:DIR), keeps after the import; "
                   "older ones go, and their blobs once 10 minutes old. A registry is never pruned. [default: 2]")
@click.pass_context
def import_command(ctx: click.Context, bundle: BinaryIO, store: Path | None, destination: str | None,
                   dest_creds: str | None, insecure: bool, ca_file: Path | None, expected_sha256: str | None,
                   verify_key: Path | None, allow_downgrade: bool, as_json: bool, lock_timeout: float,
                   public_url: str | None, keep: int | None) -> None:
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
    from trivy_mirror.cli import connection_options, static_settings
    from trivy_mirror.commands.import_ import parse_sha256, run_import

    options = connection_options(dest_creds, "dest", insecure, ca_file)
    public_url, keep = static_settings(ctx, destination, public_url, keep)
    sys.exit(asyncio.run(run_import(bundle, store, destination, options, allow_downgrade=allow_downgrade,
                                    expected_sha256=parse_sha256(expected_sha256), as_json=as_json,
                                    lock_timeout=lock_timeout, public_url=public_url, keep=keep,
                                    verify_key=verify_key)))


@click.command("trivy-cache")
@click.argument("cache_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="TRIVY_MIRROR_STORE",
              help=STORE_HELP)
@click.option("--assets", "asset_names", metavar="LIST", envvar="TRIVY_MIRROR_ASSETS", help=ASSETS_HELP)
@click.option("--mirror", metavar="URL",
              help="The trivy-mirror serve (http[s]://HOST:PORT[/PATH]) the VEX repositories should name, instead "
                   "of their upstream URLs.")
def trivy_cache_command(cache_dir: Path, store: Path | None, asset_names: str | None, mirror: str | None) -> None:
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

    specs, vex = _selection(asset_names)
    sys.exit(run_trivy_cache(cache_dir, store, specs, vex, mirror))


@click.command("trivy-config")
@click.option("--mirror", required=True, metavar="URL",
              help="How clients reach the mirror: the embedded server (http[s]://HOST:PORT[/PATH]) or a registry "
                   "prefix filled by sync --to (HOST[:PORT]/PATH, no scheme).")
@click.option("--format", "output_format", type=click.Choice(["yaml", "env", "flags"]), default="yaml",
              show_default=True,
              help="yaml: trivy.yaml and the VEX repository.yaml; env: TRIVY_* exports; flags: scan flags.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write trivy.yaml and repository.yaml into this directory (and say where Trivy wants them) "
                   "instead of printing them.")
@click.option("--username", metavar="USER", help="User for the mirror (with --password).")
@click.option("--password", metavar="PASS", envvar="TRIVY_MIRROR_CLIENT_PASSWORD",
              help="Password for --username [env: TRIVY_MIRROR_CLIENT_PASSWORD].")
@click.option("--token", metavar="TOKEN", envvar="TRIVY_MIRROR_CLIENT_TOKEN",
              help="Bearer token for the mirror (serve --token-file) [env: TRIVY_MIRROR_CLIENT_TOKEN].")
@click.option("--vex-repo", "vex_repositories", multiple=True, metavar="NAME",
              help="Enable only this VEX repository of the mirror (repeatable, in priority order); it must be one "
                   "the mirror serves. [default: every repository the mirror serves]")
@click.option("--vex-url", metavar="URL",
              help="Base URL of the trivy-mirror serve holding the VEX repositories (URL/vex/NAME) [default: "
                   "--mirror when it has a scheme; a registry prefix serves no VEX].")
@click.option("--no-vex", is_flag=True, help="Enable no VEX repository and do not ask the mirror.")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False),
              help="Read the VEX repositories from this store instead of asking the mirror over HTTP.")
@click.option("--offline", is_flag=True,
              help="Do not ask the mirror: write from the flags alone (VEX only with --vex-repo).")
@click.option("--insecure", is_flag=True,
              help="Make Trivy skip TLS verification (a self-signed mirror); also used to ask the mirror. Plain "
                   "HTTP to a host that is not loopback or RFC 1918 turns it on by itself.")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False),
              help="CA certificate (PEM) the clients trust the mirror with, as Trivy's cacert; also used to ask "
                   "the mirror when the file exists here.")
def trivy_config_command(mirror: str, output_format: str, out: Path | None, username: str | None,
                         password: str | None, token: str | None, vex_repositories: tuple[str, ...],
                         vex_url: str | None, no_vex: bool, store: Path | None, offline: bool, insecure: bool,
                         ca_file: Path | None) -> None:
    """Write the Trivy client configuration for a mirror: one step to point a fleet of Trivy at it.

    trivy.yaml names the mirror's DB and Java DB (db.repository, db.java-repository: the mirror only, since
    Trivy never falls back to the next repository when a host is unreachable), and redirects Trivy's default
    checks bundle (mirror.gcr.io/aquasec/trivy-checks) to the mirror with registry.mirrors, so every Trivy
    keeps its own checks tag: :1 up to 0.68, :2 from 0.69. It sets scan.skip-version-check and
    scan.disable-telemetry (keys Trivy 0.59 ignores; the flags it would refuse), insecure only when the
    mirror needs it, and shows the explicit checks-bundle-repository form for fleets of Trivy 0.69+.

    VEX is asked, never guessed: for an http(s) mirror the server's GET /vex/ lists the repositories it
    serves (with --username/--password or --token, --ca-file and --insecure), --store reads a store, and
    every served repository is enabled in repository.yaml (in the listed order) unless --vex-repo picks some.
    A mirror serving no VEX gets no vulnerability.vex, so no scan can fail on a missing repository; Trivy's
    GitHub default stays disabled. When the mirror cannot be asked nothing is written (--offline writes from
    the flags alone). A registry prefix serves no VEX: give --vex-url for the serve that does. The env and
    flags formats pin trivy-checks:2 (registry.mirrors exists only in trivy.yaml).

    \b
    Examples:
      trivy-mirror trivy-config --mirror http://10.0.0.5:5000 --out /etc/trivy
      trivy-mirror trivy-config --mirror https://mirror.internal --token $TOKEN --vex-repo vexhub --out .
      trivy-mirror trivy-config --mirror harbor.internal/trivy --format flags
      trivy-mirror trivy-config --mirror http://10.0.0.5:5000 --no-vex --format env   # asks nothing
    """
    from trivy_mirror.commands.trivy_config import VexChoice, run_trivy_config
    from trivy_mirror.trivyconf import Credentials, MirrorUrl

    url = MirrorUrl.parse(mirror)
    choice = VexChoice(vex_repositories, vex_url, no_vex, offline, store)
    sys.exit(run_trivy_config(url, Credentials(username, password, token), choice, insecure,
                              ca_file.absolute() if ca_file else None, output_format, out))


AIRGAP_COMMANDS = (keygen_command, export_command, import_command, trivy_cache_command, trivy_config_command)
"""Everything this module adds to the CLI, for ``cli.add_command``."""
