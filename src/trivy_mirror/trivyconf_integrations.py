"""Mirror settings for the tools that run Trivy for their users: trivy-operator, Harbor, GitLab, trivy-action.

Each tool reads its own setting names and hands Trivy only some of them, so each gets its own output, written
from the setting names its documentation and source read (README.md, "Integrations", names the sources):

===============  ==================================================================================================
trivy-operator   Helm values of the aquasecurity/trivy-operator chart (``deploy/helm/values.yaml``)
harbor           environment of goharbor/harbor-scanner-trivy (its README's configuration table)
gitlab           ``container_scanning`` job variables of GitLab's container scanning (its docs' variable table)
github-action    a workflow step for aquasecurity/trivy-action (``action.yaml``; Trivy's ``TRIVY_*`` variables)
===============  ==================================================================================================

Where a tool cannot carry something (credentials that are not its own, VEX repositories, a CA file), the output
says so in a comment and :func:`render` returns a note for stderr, rather than writing a setting nothing reads.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import yaml

from trivy_mirror.catalog import assets
from trivy_mirror.errors import UsageError
from trivy_mirror.trivyconf import CHECKS_DEFAULT_HOST, ClientConfig, asset_reference, needs_insecure
from trivy_mirror.version import __version__

_ASSETS = {spec.name: spec for spec in assets.CATALOG}

OPERATOR_CHECKS_TAG = "1"
"""trivy-operator loads the checks bundle itself (``policies.bundle.oci.ref``, default
``mirror.gcr.io/aquasec/trivy-checks:1`` in ``pkg/trivyoperator/config.go``, ``policiesBundle.tag: 1`` in the
chart) and evaluates it with the trivy-checks v1 Go module it is built with: tag 1, whatever its scan jobs' Trivy."""
SCANNER_TRIVY_CHECKS_TAG = "2"
"""harbor-scanner-trivy and trivy-action ship Trivy 0.72 (``TRIVY_VERSION`` in the adapter's Dockerfile, the
action's ``version`` input default), which asks for ``trivy-checks:2`` (0.69 and later)."""
TRIVY_ACTION = "aquasecurity/trivy-action@v0.36.0"
"""The release whose ``action.yaml`` these settings were checked against."""
PASSWORD_SECRET, TOKEN_SECRET = "TRIVY_MIRROR_PASSWORD", "TRIVY_MIRROR_TOKEN"
"""CI secrets the CI outputs reference: a password is never written into a pipeline file."""


def repository(config: ClientConfig, asset: str) -> str:
    """``HOST[:PORT][/PATH]/aquasec/NAME``, without a tag."""
    return f"{config.mirror}/{_ASSETS[asset].mirror_repository}"


def _path(config: ClientConfig, asset: str) -> str:
    """The repository inside the mirror's registry (what the operator's ``*Repository`` values hold)."""
    mirror = config.mirror
    name = _ASSETS[asset].mirror_repository
    return f"{mirror.path}/{name}" if mirror.path else name


def _comments(lines: list[str], notes: list[str]) -> str:
    """The header comment, each note wrapped as ``NOTE: ...``."""
    wrapped = [*lines]
    for note in notes:
        wrapped += textwrap.wrap(f"NOTE: {note}", 110, subsequent_indent="  ")
    return "".join(f"# {line}".rstrip() + "\n" for line in wrapped)


def _vex_note(config: ClientConfig, how: str) -> list[str]:
    """VEX lives in Trivy's repository.yaml, which none of these tools writes: ``how`` says what to do."""
    if not config.vex_repositories:
        return []
    return [f"the mirror serves the VEX repositories {', '.join(config.vex_repositories)}; {how}"]


def _insecure_note(config: ClientConfig) -> list[str]:
    if not needs_insecure(config.mirror):
        return []
    return [f"{config.mirror.registry} is reached over plain HTTP, so the insecure setting is on; it also turns off "
            f"TLS verification for the registries the scanned images come from: prefer HTTPS"]


def _no_foreign_credentials(config: ClientConfig, tool: str, why: str) -> list[str]:
    if not config.credentials:
        return []
    return [f"{tool} {why}, so the mirror's credentials are not written: serve the assets with --anonymous-pull "
            f"(or from a public project)"]


def trivy_operator(config: ClientConfig) -> tuple[str, list[str]]:
    """Helm values for the trivy-operator chart: the DBs, the checks bundle, credentials, insecure, configFile."""
    credentials = config.credentials
    if credentials.token:
        raise UsageError("trivy-operator authenticates to a DB registry with a user name and password only "
                         "(trivy.dbRepositoryUsername/Password): give --username/--password, not --token")
    mirror = config.mirror
    trivy: dict[str, Any] = {
        "dbRegistry": mirror.registry,
        "dbRepository": f"{_path(config, 'db')}:2",
        "javaDbRegistry": mirror.registry,
        "javaDbRepository": f"{_path(config, 'java-db')}:1",
    }
    bundle: dict[str, Any] = {"registry": mirror.registry, "repository": _path(config, "checks"),
                              "tag": int(OPERATOR_CHECKS_TAG)}
    if credentials.username:
        trivy.update(dbRepositoryUsername=credentials.username, dbRepositoryPassword=credentials.password)
        bundle.update(registryUser=credentials.username, registryPassword=credentials.password)
    if config.use_insecure:
        trivy["dbRepositoryInsecure"] = "true"  # a string in the chart
        bundle["insecure"] = True
    trivy["configFile"] = {"registry": {"mirrors": {CHECKS_DEFAULT_HOST: [str(mirror)]}}}
    notes = _vex_note(config, "trivy-operator has no setting for Trivy's VEX repositories") + _insecure_note(config)
    if config.ca_file is not None:
        notes.append(f"trivy-operator takes no CA file: mount {config.ca_file} into the scan jobs and set "
                     f"trivy.sslCertDir to its directory")
    header = [
        f"trivy-operator Helm values for the trivy-mirror at {mirror.url} (written by trivy-mirror {__version__}).",
        "Use them with: helm upgrade --install trivy-operator aqua/trivy-operator -n trivy-system -f THIS_FILE",
        "",
        "trivy.dbRegistry/dbRepository and javaDbRegistry/javaDbRepository: the operator joins them into",
        "TRIVY_DB_REPOSITORY and TRIVY_JAVA_DB_REPOSITORY of its scan jobs.",
        f"policiesBundle: the operator pulls the checks bundle itself, tag {OPERATOR_CHECKS_TAG} (its own default;",
        "it evaluates the bundle with the trivy-checks v1 engine it is built with); the mirror syncs",
        "trivy-checks:1 beside :2.",
        f"trivy.configFile: registry.mirrors sends the scan jobs' Trivy to the mirror for {CHECKS_DEFAULT_HOST}.",
    ]
    if credentials.username:
        header += ["The credentials go into the chart's secrets (trivy.dbRepositoryUsername/Password,",
                   "policiesBundle.registryUser/registryPassword); keep this file private."]
    body = yaml.safe_dump({"trivy": trivy, "policiesBundle": bundle}, sort_keys=False, default_flow_style=False)
    return _comments(header, notes) + body, notes


def harbor(config: ClientConfig) -> tuple[str, list[str]]:
    """The environment of Harbor's Trivy adapter (``trivy-adapter``), one ``NAME=value`` a line."""
    notes = _no_foreign_credentials(config, "harbor-scanner-trivy", "gives Trivy the credentials of the scanned "
                                    "artifact (TRIVY_USERNAME/PASSWORD or TRIVY_REGISTRY_TOKEN)")
    notes += _vex_note(config, "install the repository.yaml of --format yaml in the adapter as "
                               "/home/scanner/.trivy/vex/repository.yaml, then add SCANNER_TRIVY_VEX_SOURCE=repo")
    notes += _insecure_note(config)
    if config.ca_file is not None:
        notes.append(f"harbor-scanner-trivy passes no CA file: add {config.ca_file} to the adapter's trusted CAs "
                     f"(Harbor's internal TLS bundle, or SSL_CERT_FILE in its environment)")
    settings = [
        ("SCANNER_TRIVY_DB_REPOSITORY", asset_reference(config.mirror, "db")),
        ("SCANNER_TRIVY_JAVA_DB_REPOSITORY", asset_reference(config.mirror, "java-db")),
        ("SCANNER_TRIVY_SKIP_UPDATE", "false"),
        ("SCANNER_TRIVY_SKIP_JAVA_DB_UPDATE", "false"),
        ("SCANNER_TRIVY_OFFLINE_SCAN", "true"),
    ]
    if config.use_insecure:
        settings.append(("SCANNER_TRIVY_INSECURE", "true"))
    settings += [
        ("TRIVY_CHECKS_BUNDLE_REPOSITORY", f"{repository(config, 'checks')}:{SCANNER_TRIVY_CHECKS_TAG}"),
        ("TRIVY_SKIP_VERSION_CHECK", "true"),
        ("TRIVY_DISABLE_TELEMETRY", "true"),
    ]
    header = [
        f"harbor-scanner-trivy environment for the trivy-mirror at {config.mirror.url} "
        f"(written by trivy-mirror {__version__}).",
        "Put it in the trivy-adapter's environment (the installer's common/config/trivy-adapter/env, or the",
        "Helm chart's trivy.extraEnvVars).",
        "SKIP_UPDATE=false: the adapter downloads the DBs from the mirror whenever they are due.",
        "OFFLINE_SCAN=true: no Maven Central lookups for jars the Java DB lacks (set false if it is reachable).",
        "TRIVY_*: the adapter has no setting for them; Trivy reads them from the environment it inherits.",
    ]
    body = "".join(f"{name}={value}\n" for name, value in settings)
    return _comments(header, notes) + body, notes


def gitlab(config: ClientConfig) -> tuple[str, list[str]]:
    """``.gitlab-ci.yml`` for GitLab container scanning: the Java DB from the mirror (the DB is in the image)."""
    notes = _no_foreign_credentials(config, "GitLab container scanning", "gives Trivy the scanned image's "
                                    "registry credentials (CS_REGISTRY_USER/PASSWORD)")
    notes += _vex_note(config, "GitLab container scanning has no setting for Trivy's VEX repositories")
    notes += _insecure_note(config)
    if config.ca_file is not None:
        notes.append(f"set the CI/CD variable ADDITIONAL_CA_CERT_BUNDLE to the PEM text of {config.ca_file}")
    variables: dict[str, str] = {"CS_TRIVY_JAVA_DB": repository(config, "java-db")}
    if config.use_insecure:
        variables["CS_DOCKER_INSECURE"] = "true"
    header = [
        f"GitLab container scanning with the Java DB of the trivy-mirror at {config.mirror.url}",
        f"(written by trivy-mirror {__version__}); merge it into .gitlab-ci.yml.",
        "CS_TRIVY_JAVA_DB has no tag: the analyzer's Trivy adds :1. The vulnerability DB is built into the",
        "analyzer image (CS_ANALYZER_IMAGE), so the mirror's trivy-db is not used here.",
    ]
    if config.use_insecure:
        header.append("CS_DOCKER_INSECURE skips TLS verification (the analyzer's TRIVY_INSECURE).")
    document = {"include": [{"template": "Jobs/Container-Scanning.gitlab-ci.yml"}],
                "container_scanning": {"variables": variables}}
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return _comments(header, notes) + body, notes


def github_action(config: ClientConfig) -> tuple[str, list[str]]:
    """A workflow step running aquasecurity/trivy-action with Trivy's ``TRIVY_*`` variables for the mirror."""
    env: dict[str, str] = {
        "TRIVY_DB_REPOSITORY": asset_reference(config.mirror, "db"),
        "TRIVY_JAVA_DB_REPOSITORY": asset_reference(config.mirror, "java-db"),
        "TRIVY_CHECKS_BUNDLE_REPOSITORY": f"{repository(config, 'checks')}:{SCANNER_TRIVY_CHECKS_TAG}",
        "TRIVY_SKIP_VERSION_CHECK": "true",
        "TRIVY_DISABLE_TELEMETRY": "true",
    }
    if config.use_insecure:
        env["TRIVY_INSECURE"] = "true"
    credentials = config.credentials
    if credentials.token:
        env["TRIVY_REGISTRY_TOKEN"] = f"${{{{ secrets.{TOKEN_SECRET} }}}}"
    elif credentials.username:
        env["TRIVY_USERNAME"] = credentials.username
        env["TRIVY_PASSWORD"] = f"${{{{ secrets.{PASSWORD_SECRET} }}}}"
    notes = _vex_note(config, "install the repository.yaml of --format yaml on the runner (~/.trivy/vex/) in an "
                              "earlier step, then add TRIVY_VEX: repo") + _insecure_note(config)
    if credentials:
        secret = TOKEN_SECRET if credentials.token else PASSWORD_SECRET
        notes.append(f"store the mirror's {'token' if credentials.token else 'password'} as the repository "
                     f"secret {secret}; Trivy sends it to every registry it pulls from")
    if config.ca_file is not None:
        notes.append(f"trivy-action has no CA input: add TRIVY_CACERT with the path of {config.ca_file} on the runner")
    step = {"name": "Scan with Trivy (assets from the trivy-mirror)", "uses": TRIVY_ACTION,
            "with": {"scan-type": "image", "image-ref": "${{ env.IMAGE }}"}, "env": env}
    header = [
        f"A GitHub Actions step scanning through the trivy-mirror at {config.mirror.url}",
        f"(written by trivy-mirror {__version__}); put it under a job's steps: and set IMAGE.",
        "trivy-action passes the TRIVY_* variables of the step to Trivy; the checks tag is 2 for the action's",
        f"default Trivy (0.69 and later). Pin {TRIVY_ACTION.split('@')[0]} to a commit SHA in production.",
    ]
    body = yaml.safe_dump([step], sort_keys=False, default_flow_style=False, width=120)
    return _comments(header, notes) + body, notes


INTEGRATIONS: dict[str, Callable[[ClientConfig], tuple[str, list[str]]]] = {
    "trivy-operator": trivy_operator,
    "harbor": harbor,
    "gitlab": gitlab,
    "github-action": github_action,
}
"""``trivy-config --format`` name -> renderer of (text, notes for stderr)."""


def render(name: str, config: ClientConfig) -> tuple[str, list[str]]:
    """The configuration for integration ``name`` and the notes worth a line on stderr."""
    return INTEGRATIONS[name](config)
