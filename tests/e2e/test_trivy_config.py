"""``trivy-config`` end to end: the generated configuration, given to a real Trivy, pulls from the mirror."""

from __future__ import annotations

import json
import shlex
import stat
import urllib.request
from pathlib import Path

import pytest
import yaml

from support.cli import MirrorCli, assert_one_error_line
from support.registry import RegistryFactory, RegistryProcess, push_artifact
from support.trivy import TrivySandbox, misconfig_ids, run_trivy, vuln_ids
from support.trivy_assets import CHECK_ID, MAVEN_CVE, PIP_CVE, AssetSet

pytestmark = pytest.mark.e2e


def fill(process: RegistryProcess, prefix: str, assets: AssetSet, auth: tuple[str, str] | None = None) -> None:
    for repository, tag, artifact in assets.upstream_tags():
        push_artifact(process.host, f"{prefix}/{repository}", tag, artifact, auth=auth)


@pytest.fixture
def filled_registry(registry: RegistryFactory, assets: AssetSet) -> RegistryProcess:
    """A registry holding the assets under ``trivy/``, as ``sync --to HOST/trivy`` leaves them."""
    process = registry()
    fill(process, "trivy", assets)
    return process


def test_generated_trivy_yaml_is_all_trivy_needs(mirror: MirrorCli, filled_registry: RegistryProcess,
                                                 assets: AssetSet, trivy: TrivySandbox, tmp_path: Path) -> None:
    out = tmp_path / "config"
    result = mirror.run(["trivy-config", "--mirror", f"{filled_registry.host}/trivy", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["repository.yaml", "trivy.yaml"]
    assert f"--config {out / 'trivy.yaml'}" in result.stdout
    assert ".trivy/vex/repository.yaml" in result.stdout

    document = yaml.safe_load((out / "trivy.yaml").read_text())
    base = f"{filled_registry.host}/trivy/aquasec"
    assert document["db"] == {"repository": [f"{base}/trivy-db:2"], "java-repository": [f"{base}/trivy-java-db:1"]}
    assert document["registry"] == {"mirrors": {"mirror.gcr.io": [f"{filled_registry.host}/trivy"]}}
    assert "misconfiguration" not in document  # each Trivy keeps its own checks tag through registry.mirrors
    assert document["scan"] == {"skip-version-check": True, "disable-telemetry": True}
    assert "insecure" not in document and "vulnerability" not in document  # loopback; a registry serves no VEX
    assert "no VEX repository enabled" in result.stderr
    text = (out / "trivy.yaml").read_text()
    assert f"#   checks-bundle-repository: {base}/trivy-checks:2\n" in text

    configured = ["--config", str(out / "trivy.yaml")]
    assert vuln_ids(trivy.scan([*configured, "fs", "--scanners", "vuln", str(assets.targets.requirements_dir)])) \
        == {PIP_CVE}
    assert vuln_ids(trivy.scan([*configured, "rootfs", "--scanners", "vuln", str(assets.targets.rootfs_dir)])) \
        == {MAVEN_CVE}
    assert CHECK_ID in misconfig_ids(trivy.scan([*configured, "config", str(assets.targets.dockerfile_dir)]))


def test_env_and_flags_formats(mirror: MirrorCli, filled_registry: RegistryProcess, assets: AssetSet,
                               trivy: TrivySandbox) -> None:
    mirror_ref = f"{filled_registry.host}/trivy"
    env_out = mirror.run(["trivy-config", "--mirror", mirror_ref, "--format", "env"])
    assert env_out.returncode == 0, env_out.stderr
    variables = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                     for line in env_out.stdout.splitlines() if line.startswith("export "))
    assert variables["TRIVY_SKIP_VERSION_CHECK"] == "true"
    report = trivy.scan(["fs", "--scanners", "vuln", str(assets.targets.requirements_dir)], env=variables)
    assert vuln_ids(report) == {PIP_CVE}

    flags_out = mirror.run(["trivy-config", "--mirror", mirror_ref, "--format", "flags"])
    assert flags_out.returncode == 0, flags_out.stderr
    flags = shlex.split(flags_out.stdout)
    assert vuln_ids(trivy.scan(["rootfs", "--scanners", "vuln", *flags, str(assets.targets.rootfs_dir)])) \
        == {MAVEN_CVE}


def test_credentials_reach_trivy_and_the_files_stay_private(
    mirror: MirrorCli, registry: RegistryFactory, assets: AssetSet, trivy: TrivySandbox, tmp_path: Path
) -> None:
    credentials = ("scanner", "s3cret-pass")
    process = registry(auth=credentials)
    fill(process, "trivy", assets, auth=credentials)
    out = tmp_path / "config"
    result = mirror.run(["trivy-config", "--mirror", f"{process.host}/trivy", "--username", credentials[0],
                         "--out", str(out)], env={"TRIVY_MIRROR_CLIENT_PASSWORD": credentials[1]})
    assert result.returncode == 0, result.stderr
    assert "every registry" in result.stderr  # Trivy tries registry credentials everywhere: said once
    for name in ("trivy.yaml", "repository.yaml"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert yaml.safe_load((out / "trivy.yaml").read_text())["registry"] == {
        "mirrors": {"mirror.gcr.io": [f"{process.host}/trivy"]}, "username": [credentials[0]],
        "password": [credentials[1]]}
    report = trivy.scan(["--config", str(out / "trivy.yaml"), "fs", "--scanners", "vuln",
                         str(assets.targets.requirements_dir)])
    assert vuln_ids(report) == {PIP_CVE}


def test_repository_yaml_is_what_trivy_reads(mirror: MirrorCli, tmp_path: Path) -> None:
    out = tmp_path / "config"
    result = mirror.run(["trivy-config", "--mirror", "https://mirror.example:8443/base", "--vex-repo", "vexhub",
                         "--vex-repo", "internal", "--token", "t0ken", "--offline", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    repositories = yaml.safe_load((out / "repository.yaml").read_text())["repositories"]
    assert [(r["name"], r["url"], r["enabled"]) for r in repositories] == [
        ("vexhub", "https://mirror.example:8443/base/vex/vexhub", True),
        ("internal", "https://mirror.example:8443/base/vex/internal", True),
        ("default", "https://github.com/aquasecurity/vexhub", False),
    ]
    assert repositories[0]["token"] == "t0ken"
    assert yaml.safe_load((out / "trivy.yaml").read_text())["vulnerability"] == {"vex": ["repo"]}

    home = tmp_path / "trivy-home"
    data_home = home / ".local" / "share"  # XDG_DATA_HOME in the Trivy sandbox
    (data_home / ".trivy" / "vex").mkdir(parents=True)
    (data_home / ".trivy" / "vex" / "repository.yaml").write_bytes((out / "repository.yaml").read_bytes())
    listing = run_trivy(["vex", "repo", "list"], tmp_path / "cache", home)
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout + listing.stderr
    assert "https://mirror.example:8443/base/vex/vexhub" in text and "Status: Disabled" in text


@pytest.mark.parametrize(("url", "insecure"), [
    ("http://127.0.0.1:5000", False), ("http://10.1.2.3:5000", False), ("http://192.168.7.7", False),
    ("http://localhost:5000", False), ("https://mirror.example", False), ("mirror.example:5000/trivy", False),
    ("http://mirror.example:5000", True), ("http://127.0.0.2:5000", True), ("http://localhost", True),
])
def test_insecure_only_when_trivy_needs_it(mirror: MirrorCli, url: str, insecure: bool) -> None:
    result = mirror.run(["trivy-config", "--mirror", url, "--no-vex"])
    assert result.returncode == 0, result.stderr
    trivy_yaml = next(yaml.safe_load_all(result.stdout))
    assert (trivy_yaml.get("insecure") is True) == insecure
    assert ("plain HTTP" in result.stderr) == insecure


@pytest.mark.parametrize(("args", "message"), [
    (["--mirror", "trivy-mirror/base"], "Docker Hub"),
    (["--mirror", "ftp://mirror.example"], "scheme"),
    (["--mirror", "mirror.example:5000/trivy", "--vex-repo", "vexhub"], "--vex-url"),
    (["--mirror", "https://mirror.example", "--token", "t", "--username", "u", "--password", "p"], "either"),
    (["--mirror", "https://mirror.example", "--format", "env", "--out", "x"], "--format yaml"),
    (["--mirror", "https://mirror.example", "--no-vex", "--vex-repo", "vexhub"], "--no-vex"),
    (["--mirror", "https://mirror.example", "--offline", "--store", "s"], "give one"),
    (["--mirror", "mirror.example:5000/trivy", "--vex-url", "mirror.example"], "http"),
    (["--mirror", "https://mirror.example", "--no-vex", "--token", "t", "--format", "trivy-operator"],
     "user name and password"),
])
def test_bad_arguments_are_usage_errors(mirror: MirrorCli, args: list[str], message: str) -> None:
    result = mirror.run(["trivy-config", *args])
    assert message in assert_one_error_line(result, code=2)


def test_yaml_without_out_prints_both_documents(mirror: MirrorCli) -> None:
    result = mirror.run(["trivy-config", "--mirror", "http://10.0.0.5:5000", "--offline", "--vex-repo", "vexhub"])
    assert result.returncode == 0, result.stderr
    trivy_doc, repository_doc = yaml.safe_load_all(result.stdout)
    assert trivy_doc["db"]["repository"] == ["10.0.0.5:5000/aquasec/trivy-db:2"]
    assert repository_doc["repositories"][0]["url"] == "http://10.0.0.5:5000/vex/vexhub"


def test_integration_formats_reach_a_real_trivy(mirror: MirrorCli, filled_registry: RegistryProcess,
                                                assets: AssetSet, trivy: TrivySandbox, tmp_path: Path) -> None:
    """Each integration's output, handed to Trivy the way that integration hands it (its source named below),
    makes Trivy pull the DBs and the checks from the mirror."""
    mirror_ref = f"{filled_registry.host}/trivy"

    def generate(name: str) -> str:
        result = mirror.run(["trivy-config", "--mirror", mirror_ref, "--format", name])
        assert result.returncode == 0, result.stderr
        return result.stdout

    # trivy-action (action.yaml): the step's env reaches Trivy as it is.
    (step,) = yaml.safe_load(generate("github-action"))
    env = {name: str(value) for name, value in step["env"].items()}
    assert vuln_ids(trivy.scan(["rootfs", "--scanners", "vuln", str(assets.targets.rootfs_dir)], env=env)) \
        == {MAVEN_CVE}
    assert CHECK_ID in misconfig_ids(trivy.scan(["config", str(assets.targets.dockerfile_dir)], env=env))

    # harbor-scanner-trivy (pkg/trivy/wrapper.go): SCANNER_TRIVY_* become flags, TRIVY_* are inherited.
    settings = dict(line.split("=", 1) for line in generate("harbor").splitlines() if not line.startswith("#"))
    flags = ["--db-repository", settings["SCANNER_TRIVY_DB_REPOSITORY"],
             "--java-db-repository", settings["SCANNER_TRIVY_JAVA_DB_REPOSITORY"], "--offline-scan"]
    inherited = {name: value for name, value in settings.items() if name.startswith("TRIVY_")}
    report = trivy.scan(["rootfs", "--scanners", "vuln", *flags, str(assets.targets.rootfs_dir)], env=inherited)
    assert vuln_ids(report) == {MAVEN_CVE}

    # trivy-operator (templates/configmaps/trivy.yaml): TRIVY_DB_REPOSITORY is "dbRegistry/dbRepository", the
    # configFile is Trivy's config; the operator pulls policiesBundle's reference itself: that tag is served.
    values = yaml.safe_load(generate("trivy-operator"))
    operator = values["trivy"]
    config_file = tmp_path / "operator-trivy.yaml"
    config_file.write_text(yaml.safe_dump(operator["configFile"]))
    env = {"TRIVY_DB_REPOSITORY": f"{operator['dbRegistry']}/{operator['dbRepository']}",
           "TRIVY_JAVA_DB_REPOSITORY": f"{operator['javaDbRegistry']}/{operator['javaDbRepository']}"}
    report = trivy.scan(["--config", str(config_file), "rootfs", "--scanners", "vuln",
                         str(assets.targets.rootfs_dir)], env=env)
    assert vuln_ids(report) == {MAVEN_CVE}
    bundle = values["policiesBundle"]
    assert bundle["registry"] == filled_registry.host
    request = urllib.request.Request(f"{filled_registry.url}/v2/{bundle['repository']}/manifests/{bundle['tag']}",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["layers"][0]["mediaType"] \
            == "application/vnd.cncf.openpolicyagent.layer.v1.tar+gzip"

    # GitLab container scanning: CS_TRIVY_JAVA_DB is the Java DB repository (the DB is in the analyzer image,
    # so the test takes it from the mirror too).
    variables = yaml.safe_load(generate("gitlab"))["container_scanning"]["variables"]
    report = trivy.scan(["rootfs", "--scanners", "vuln", "--java-db-repository", variables["CS_TRIVY_JAVA_DB"],
                         "--db-repository", f"{mirror_ref}/aquasec/trivy-db", str(assets.targets.rootfs_dir)])
    assert vuln_ids(report) == {MAVEN_CVE}
