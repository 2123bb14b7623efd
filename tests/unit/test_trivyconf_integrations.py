"""``trivy-config --format trivy-operator|harbor|gitlab|github-action``: every setting written is one the
integration reads, with the value Trivy needs. The expected names are copied from each integration's own
documentation or source (URL in the comment above each set), never from the code under test."""

from __future__ import annotations

import pytest
import yaml

from trivy_mirror.errors import UsageError
from trivy_mirror.registry.credentials import Credentials
from trivy_mirror.trivyconf import ClientConfig, client_credentials, parse_mirror
from trivy_mirror.trivyconf_integrations import INTEGRATIONS, render

# https://github.com/aquasecurity/trivy-operator/blob/main/deploy/helm/values.yaml (chart 0.34.0), keys under trivy:
OPERATOR_TRIVY_VALUES = {
    "dbRegistry", "dbRepository", "dbRepositoryUsername", "dbRepositoryPassword", "javaDbRegistry",
    "javaDbRepository", "dbRepositoryInsecure", "configFile", "sslCertDir", "offlineScan", "insecureRegistries",
    "nonSslRegistries", "registry",
}
# ... and under policiesBundle:
OPERATOR_BUNDLE_VALUES = {"registry", "repository", "tag", "registryUser", "registryPassword", "existingSecret",
                          "insecure"}
# https://github.com/goharbor/harbor-scanner-trivy#configuration (README's environment table)
HARBOR_SETTINGS = {
    "SCANNER_TRIVY_CACHE_DIR", "SCANNER_TRIVY_REPORTS_DIR", "SCANNER_TRIVY_DEBUG_MODE", "SCANNER_TRIVY_VULN_TYPE",
    "SCANNER_TRIVY_SECURITY_CHECKS", "SCANNER_TRIVY_SEVERITY", "SCANNER_TRIVY_IGNORE_UNFIXED",
    "SCANNER_TRIVY_IGNORE_POLICY", "SCANNER_TRIVY_SKIP_UPDATE", "SCANNER_TRIVY_SKIP_JAVA_DB_UPDATE",
    "SCANNER_TRIVY_DB_REPOSITORY", "SCANNER_TRIVY_JAVA_DB_REPOSITORY", "SCANNER_TRIVY_OFFLINE_SCAN",
    "SCANNER_TRIVY_GITHUB_TOKEN", "SCANNER_TRIVY_INSECURE", "SCANNER_TRIVY_TIMEOUT", "SCANNER_TRIVY_VEX_SOURCE",
    "SCANNER_TRIVY_SKIP_VEX_REPO_UPDATE",
}
# Trivy's own environment variables (https://trivy.dev/latest/docs/references/configuration/cli/trivy_image/,
# TRIVY-ASSETS.md 2.1): what harbor-scanner-trivy's Trivy inherits and trivy-action passes through.
TRIVY_ENVIRONMENT = {
    "TRIVY_DB_REPOSITORY", "TRIVY_JAVA_DB_REPOSITORY", "TRIVY_CHECKS_BUNDLE_REPOSITORY", "TRIVY_SKIP_VERSION_CHECK",
    "TRIVY_DISABLE_TELEMETRY", "TRIVY_INSECURE", "TRIVY_USERNAME", "TRIVY_PASSWORD", "TRIVY_REGISTRY_TOKEN",
    "TRIVY_CACERT", "TRIVY_VEX",
}
# https://docs.gitlab.com/user/application_security/container_scanning/#available-cicd-variables
GITLAB_VARIABLES = {
    "ADDITIONAL_CA_CERT_BUNDLE", "CI_APPLICATION_REPOSITORY", "CI_APPLICATION_TAG", "CS_ANALYZER_IMAGE",
    "CS_DEFAULT_BRANCH_IMAGE", "CS_DISABLE_LANGUAGE_VULNERABILITY_SCAN", "CS_DOCKER_INSECURE", "CS_DOCKERFILE_PATH",
    "CS_IGNORE_STATUSES", "CS_IGNORE_UNFIXED", "CS_IMAGE", "CS_REGISTRY_INSECURE", "CS_REGISTRY_PASSWORD",
    "CS_REGISTRY_USER", "CS_SEVERITY_THRESHOLD", "CS_TRIVY_JAVA_DB", "SECURE_LOG_LEVEL", "TRIVY_TIMEOUT",
}
# https://github.com/aquasecurity/trivy-action/blob/master/action.yaml (inputs)
TRIVY_ACTION_INPUTS = {
    "scan-type", "image-ref", "input", "scan-ref", "exit-code", "ignore-unfixed", "vuln-type", "severity", "format",
    "template", "output", "skip-dirs", "skip-files", "cache-dir", "timeout", "ignore-policy", "hide-progress",
    "list-all-pkgs", "scanners", "trivyignores", "github-pat", "trivy-config", "tf-vars",
    "limit-severities-for-sarif", "docker-host", "version", "cache", "skip-setup-trivy", "token-setup-trivy",
}


def config(mirror: str = "https://mirror.example:8443/base", credentials: Credentials | None = None,
           insecure: bool = False) -> ClientConfig:
    return ClientConfig(parse_mirror(mirror), credentials or client_credentials(), insecure=insecure)


def body(text: str) -> str:
    """The output without its comment header: what the integration parses."""
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))


def test_every_format_is_offered() -> None:
    assert set(INTEGRATIONS) == {"trivy-operator", "harbor", "gitlab", "github-action"}


def test_trivy_operator_values() -> None:
    text, notes = render("trivy-operator", config(credentials=client_credentials("scanner", "pw"), insecure=True))
    values = yaml.safe_load(text)
    assert set(values) == {"trivy", "policiesBundle"}
    assert set(values["trivy"]) <= OPERATOR_TRIVY_VALUES
    assert set(values["policiesBundle"]) <= OPERATOR_BUNDLE_VALUES
    trivy, bundle = values["trivy"], values["policiesBundle"]
    # deploy/helm/templates/configmaps/trivy.yaml joins them: "{{ dbRegistry }}/{{ dbRepository }}"
    assert f"{trivy['dbRegistry']}/{trivy['dbRepository']}" == "mirror.example:8443/base/aquasec/trivy-db:2"
    assert f"{trivy['javaDbRegistry']}/{trivy['javaDbRepository']}" \
        == "mirror.example:8443/base/aquasec/trivy-java-db:1"
    # templates/configmaps/operator.yaml: policies.bundle.oci.ref "{{ registry }}/{{ repository }}:{{ tag }}",
    # the operator's own default being mirror.gcr.io/aquasec/trivy-checks:1 (pkg/trivyoperator/config.go)
    assert f"{bundle['registry']}/{bundle['repository']}:{bundle['tag']}" \
        == "mirror.example:8443/base/aquasec/trivy-checks:1"
    assert (trivy["dbRepositoryUsername"], trivy["dbRepositoryPassword"]) == ("scanner", "pw")
    assert (bundle["registryUser"], bundle["registryPassword"]) == ("scanner", "pw")
    assert trivy["dbRepositoryInsecure"] == "true" and bundle["insecure"] is True  # a string in the chart
    assert trivy["configFile"] == {"registry": {"mirrors": {"mirror.gcr.io": ["mirror.example:8443/base"]}}}
    assert notes == []


def test_trivy_operator_plain_values_and_no_token() -> None:
    values = yaml.safe_load(render("trivy-operator", config("http://10.0.0.5:5000"))[0])
    assert "dbRepositoryInsecure" not in values["trivy"] and "insecure" not in values["policiesBundle"]
    assert values["trivy"]["dbRepository"] == "aquasec/trivy-db:2"
    with pytest.raises(UsageError, match="user name and password"):
        render("trivy-operator", config(credentials=client_credentials(token="t0k")))


def settings_of(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in body(text).splitlines())


def test_harbor_environment() -> None:
    text, notes = render("harbor", config("http://mirror.example:5000"))
    settings = settings_of(text)
    assert set(settings) <= HARBOR_SETTINGS | TRIVY_ENVIRONMENT
    assert settings["SCANNER_TRIVY_DB_REPOSITORY"] == "mirror.example:5000/aquasec/trivy-db:2"
    assert settings["SCANNER_TRIVY_JAVA_DB_REPOSITORY"] == "mirror.example:5000/aquasec/trivy-java-db:1"
    assert settings["SCANNER_TRIVY_SKIP_UPDATE"] == settings["SCANNER_TRIVY_SKIP_JAVA_DB_UPDATE"] == "false"
    assert settings["SCANNER_TRIVY_INSECURE"] == "true"  # plain HTTP to a public name
    assert settings["TRIVY_CHECKS_BUNDLE_REPOSITORY"] == "mirror.example:5000/aquasec/trivy-checks:2"
    assert any("plain HTTP" in note for note in notes)


def test_harbor_never_writes_the_mirror_credentials() -> None:
    text, notes = render("harbor", config(credentials=client_credentials("scanner", "s3cret")))
    assert "s3cret" not in text and "scanner" not in body(text)
    assert not {"TRIVY_USERNAME", "TRIVY_PASSWORD"} & set(settings_of(text))
    assert any("--anonymous-pull" in note for note in notes)
    assert "SCANNER_TRIVY_INSECURE" not in settings_of(render("harbor", config())[0])


def test_gitlab_variables() -> None:
    text, notes = render("gitlab", config("http://mirror.example:5000", client_credentials(token="t0k")))
    document = yaml.safe_load(text)
    assert document["include"] == [{"template": "Jobs/Container-Scanning.gitlab-ci.yml"}]
    variables = document["container_scanning"]["variables"]
    assert set(variables) <= GITLAB_VARIABLES
    # "Do not add the tag :1 at the end, it is added by trivy" (the docs' Java DB mirror section)
    assert variables["CS_TRIVY_JAVA_DB"] == "mirror.example:5000/aquasec/trivy-java-db"
    assert variables["CS_DOCKER_INSECURE"] == "true"
    assert "t0k" not in text and any("--anonymous-pull" in note for note in notes)


def test_github_action_step() -> None:
    text, notes = render("github-action", config(credentials=client_credentials("scanner", "s3cret")))
    (step,) = yaml.safe_load(text)
    assert step["uses"].startswith("aquasecurity/trivy-action@")
    assert set(step["with"]) <= TRIVY_ACTION_INPUTS
    env = step["env"]
    assert set(env) <= TRIVY_ENVIRONMENT
    assert env["TRIVY_DB_REPOSITORY"] == "mirror.example:8443/base/aquasec/trivy-db:2"
    assert env["TRIVY_JAVA_DB_REPOSITORY"] == "mirror.example:8443/base/aquasec/trivy-java-db:1"
    assert env["TRIVY_CHECKS_BUNDLE_REPOSITORY"] == "mirror.example:8443/base/aquasec/trivy-checks:2"
    assert env["TRIVY_USERNAME"] == "scanner"
    assert env["TRIVY_PASSWORD"] == "${{ secrets.TRIVY_MIRROR_PASSWORD }}"  # never the password itself
    assert "s3cret" not in text and "TRIVY_INSECURE" not in env
    assert any("TRIVY_MIRROR_PASSWORD" in note for note in notes)
    with_token = config(credentials=client_credentials(token="t0k"))
    token_env = yaml.safe_load(render("github-action", with_token)[0])[0]["env"]
    assert token_env["TRIVY_REGISTRY_TOKEN"] == "${{ secrets.TRIVY_MIRROR_TOKEN }}"


@pytest.mark.parametrize("name", sorted(INTEGRATIONS))
def test_vex_becomes_a_note_not_a_setting(name: str) -> None:
    vex = ClientConfig(parse_mirror("https://mirror.example"), vex_repositories=("vexhub",),
                       vex_base="https://mirror.example")
    text, notes = render(name, vex)
    assert any("vexhub" in note for note in notes)
    assert "vexhub" not in body(text)  # only repository.yaml can name them
