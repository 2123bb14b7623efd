"""``trivy-config``: the client side, pointing Trivy at a mirror."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trivy_mirror.cli import options


@click.command("trivy-config")
@options.mirror("How clients reach the mirror: the embedded server (http[s]://HOST:PORT[/PATH]) or a registry "
                "prefix filled by sync --to (HOST[:PORT]/PATH, no scheme).", required=True)
@click.option("--format", "output_format", default="yaml", show_default=True,
              type=click.Choice(["yaml", "env", "flags", "trivy-operator", "harbor", "gitlab", "github-action"]),
              help="yaml: trivy.yaml and the VEX repository.yaml; env: TRIVY_* exports; flags: scan flags; "
                   "trivy-operator: Helm values; harbor: the Trivy adapter's environment; gitlab: container "
                   "scanning variables; github-action: a trivy-action step.")
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
@options.store("Read the VEX repositories from this store instead of asking the mirror over HTTP.")
@click.option("--offline", is_flag=True,
              help="Do not ask the mirror: write from the flags alone (VEX only with --vex-repo).")
@click.option("--insecure", is_flag=True,
              help="Make Trivy skip TLS verification (a self-signed mirror); also used to ask the mirror. Plain "
                   "HTTP to a host that is not loopback or RFC 1918 turns it on by itself.")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False),
              help="CA certificate (PEM) the clients trust the mirror with, as Trivy's cacert; also used to ask "
                   "the mirror when the file exists here.")
def trivy_config(mirror: str, output_format: str, out: Path | None, username: str | None,
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
      trivy-mirror trivy-config --mirror https://mirror.internal --no-vex --format trivy-operator > values.yaml
    """
    from trivy_mirror.commands.trivy_config import VexChoice, run_trivy_config
    from trivy_mirror.trivyconf import client_credentials, parse_mirror

    url = parse_mirror(mirror)
    choice = VexChoice(vex_repositories, vex_url, no_vex, offline, store)
    sys.exit(run_trivy_config(url, client_credentials(username, password, token), choice, insecure,
                              ca_file.absolute() if ca_file else None, output_format, out))


COMMANDS = (trivy_config,)
