"""The monitoring that ships in deploy/prometheus, on a real Prometheus (Debian's package).

``promtool test rules`` runs the rules' own unit tests; then a real Prometheus scrapes a real ``serve`` whose
store holds a DB that went stale years ago, evaluates the shipped rules, and the stale-asset alert fires.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from support.cli import MirrorCli
from support.registry import RegistryFactory, free_port, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import DB_REPOSITORY, build_vuln_db

pytestmark = pytest.mark.e2e

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True,
                            text=True, timeout=120, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.fixture
def stale_serve(tmp_path: Path, registry: RegistryFactory) -> Iterator[ServeProcess]:
    """``serve`` syncing from an upstream whose DB's NextUpdate was in 2020 (so sync metrics exist too)."""
    upstream = registry()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    push_artifact(upstream.host, DB_REPOSITORY, "2", build_vuln_db(updated_at=old, next_update=old))
    cli = MirrorCli(tmp_path / "home")
    store = tmp_path / "store"
    synced = cli.run(["sync", "--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"])
    assert synced.returncode == 0, synced.stderr
    with ServeProcess(cli, ["--from", f"{upstream.host}/aquasec", "--store", str(store), "--assets", "db"]) as serve:
        yield serve


def test_prometheus_scrapes_serve_and_the_stale_alert_fires(stale_serve: ServeProcess, tmp_path: Path) -> None:
    config = yaml.safe_load((RULES / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [stale_serve.host]}]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        firing: list[dict[str, object]] = []
        while not firing:
            assert prometheus.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"no stale alert; last alerts: {firing}\n{log_path.read_text()}"
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5) as response:
                    alerts = json.load(response)["data"]["alerts"]
            except OSError:
                continue
            firing = [a for a in alerts if a["labels"]["alertname"] == "TrivyMirrorAssetStale"
                      and a["state"] == "firing"]
        assert [a["labels"]["asset"] for a in firing] == ["db"]
        assert firing[0]["labels"]["instance"] == stale_serve.host
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=up", timeout=5) as response:
            [up] = json.load(response)["data"]["result"]
        assert up["value"][1] == "1"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def test_every_metric_the_rules_and_dashboard_name_is_one_serve_exports(stale_serve: ServeProcess) -> None:
    dashboard = json.loads((RULES.parent / "grafana" / "trivy-mirror.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = {name for expr in expressions for name in re.findall(r"\btrivy_mirror_\w+", expr)}
    assert named, "no trivy_mirror metric named at all"
    # A scanner's pull puts it in the census (its counter has no sample before); the sync and per-asset metrics
    # appear once the first sync (started with serve) has finished.
    stale_serve.get("/v2/aquasec/trivy-db/manifests/2", headers={"User-Agent": "trivy/0.76.0"})
    deadline = time.monotonic() + 30
    while True:
        status, body = stale_serve.get("/metrics")
        assert status == 200
        exported = set(re.findall(r"^(trivy_mirror_\w+?)(?:\{| )", body.decode(), re.MULTILINE))
        if named <= exported or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert named <= exported, named - exported
