"""The status page in a real headless Chromium (Debian's ``chromium``), served by a real ``serve``.

The store holds a DB whose NextUpdate was in 2020 (stale), a fresh Java DB and checks bundle, a VEX repository,
and a census of a Trivy that asked for a tag the mirror lacks. The browser must render the page, show the DB as
stale and the others as fresh, list the VEX repository, the client and trivy-config's output, and log no error.
``STATUS_PAGE_SCREENSHOT=docs/status-page.png`` keeps the screenshot for the README.
"""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml

from support.chromium import Chromium, open_page
from support.cli import MirrorCli
from support.registry import RegistryFactory, push_artifact
from support.serve import ServeProcess
from support.trivy_assets import (
    CHECKS_REPOSITORY,
    DB_REPOSITORY,
    JAVA_DB_REPOSITORY,
    build_checks_bundle,
    build_java_db,
    build_vuln_db,
)
from support.vex_repo import UpstreamVex, manifest, repository_files, zip_archive

pytestmark = pytest.mark.e2e

ROWS = """JSON.stringify(Array.from(document.querySelectorAll('tr[id]')).map(
    row => [row.id, row.querySelector('.state') ? row.querySelector('.state').textContent : null]))"""


def as_trivy(url: str) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": "trivy/0.76.0",
                                                   "Accept": "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


async def test_the_status_page_in_a_real_chromium(tmp_path: Path, registry: RegistryFactory) -> None:
    upstream = registry()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    push_artifact(upstream.host, DB_REPOSITORY, "2", build_vuln_db(updated_at=old, next_update=old))
    push_artifact(upstream.host, JAVA_DB_REPOSITORY, "1", build_java_db())
    push_artifact(upstream.host, CHECKS_REPOSITORY, "2", build_checks_bundle())
    vex = await UpstreamVex().start()
    vex.files["/flat/.well-known/vex-repository.json"] = manifest(f"{vex.url}/flat/vex.zip")
    vex.files["/flat/vex.zip"] = zip_archive(repository_files())
    cli = MirrorCli(tmp_path / "home")
    store = tmp_path / "store"
    sources = ["--from", f"{upstream.host}/aquasec", "--store", str(store), "--vex-from", f"vexhub={vex.url}/flat"]
    try:
        synced = await asyncio.to_thread(cli.run, ["sync", *sources])
        assert synced.returncode == 0, synced.stderr
        with ServeProcess(cli, sources) as serve:
            assert as_trivy(f"{serve.url}/v2/aquasec/trivy-db/manifests/2") == 200
            assert as_trivy(f"{serve.url}/v2/aquasec/trivy-checks/manifests/7") == 404
            with Chromium(tmp_path / "chromium") as browser:
                async with aiohttp.ClientSession() as session:
                    page = await open_page(browser, session, f"{serve.url}/")
                    assert await page.evaluate("document.title") == f"trivy-mirror at {serve.url}"
                    rows = dict(yaml.safe_load(await page.evaluate(ROWS)))
                    assert rows["asset-aquasec/trivy-db:2"] == "stale"
                    assert rows["asset-aquasec/trivy-java-db:1"] == "fresh"
                    assert rows["asset-aquasec/trivy-checks:2"] == "fresh"
                    assert rows["vex-vexhub"] == "fresh"
                    text = await page.evaluate("document.body.innerText")
                    assert "Not ready: db: aquasec/trivy-db:2 is stale (NextUpdate 2020-01-01T00:00:00Z has passed)" \
                        in text
                    assert "Trivy 0.76.0" in text and "aquasec/trivy-checks:7 not-found" in text
                    assert f"{serve.host}/aquasec/trivy-db:2" in text and f"{serve.url}/vex/vexhub" in text
                    # The details of the attempts open without script: a plain <details> element.
                    assert await page.evaluate("document.querySelectorAll('details').length") >= 4
                    assert await page.evaluate("document.scripts.length") == 0
                    shot = await page.screenshot()
                    assert shot.startswith(b"\x89PNG")
                    assert page.problems == []
                    # ... and the watcher does see errors: a path serve does not know is a logged 404.
                    broken = await open_page(browser, session, f"{serve.url}/no-such-page")
                    await broken.evaluate("1")
                    assert any("404" in problem for problem in broken.problems), broken.problems
            keep = os.environ.get("STATUS_PAGE_SCREENSHOT")
            if keep:
                await asyncio.to_thread(Path(keep).write_bytes, shot)
    finally:
        await vex.stop()
