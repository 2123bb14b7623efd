"""The README's quick start, as a stranger runs it: a fresh copy of the checkout, a fresh HOME, and a PATH with only
Debian's system directories (so only the system Python, which refuses ``pip install`` outside a venv).

The first command of the quick start is read from the README itself, so the test follows the text users follow.
The mirror's settings come from the config file the README documents (``~/.config/trivy-mirror/config.yaml``):
a free loopback port and the test's upstream registry, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support.registry import RegistryProcess, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
INSTALL_TIMEOUT = 420.0


def quick_start_commands() -> list[str]:
    """The shell commands of the README's ``## Quick start`` section, in order, one per ``sh`` block."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def fresh_copy(destination: Path) -> Path:
    """The files git tracks in this checkout (a clean clone's content, with uncommitted edits), nothing else."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def test_readme_quick_start_opens_with_the_run_and_the_test_command() -> None:
    run, test = quick_start_commands()[:2]
    assert "\n" not in run and run.endswith("trivy-mirror serve"), run
    assert test == "bash scripts/test.sh"


def test_quick_start_serves_with_only_the_system_python(tmp_path: Path, upstream: RegistryProcess) -> None:
    assert Path("/usr/bin/python3").exists(), "Debian's /usr/bin/python3 is missing"
    checkout = fresh_copy(tmp_path / "checkout")
    home = tmp_path / "home"
    port = free_port()
    config = home / ".config" / "trivy-mirror" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"from: [{upstream.host}/aquasec]\nserve:\n  listen: 127.0.0.1:{port}\n")
    command = quick_start_commands()[0]
    log_path = tmp_path / "quickstart.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["/bin/bash", "-c", command], cwd=checkout, stdout=log, stderr=subprocess.STDOUT,
                                   env={"PATH": SYSTEM_PATH, "HOME": str(home)}, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + INSTALL_TIMEOUT
        while http_status(base + "/v2/") != 200:
            assert process.poll() is None, f"the quick start exited {process.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no answer on /v2/ in {INSTALL_TIMEOUT}s:\n{log_path.read_text()}"
            time.sleep(1)
        while http_status(base + "/readyz") != 200:
            assert time.monotonic() < deadline, f"the assets were never all served:\n{log_path.read_text()}"
            time.sleep(0.5)
        assert http_status(base + "/v2/aquasec/trivy-db/manifests/2") == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    assert (checkout / ".venv" / "bin" / "trivy-mirror").exists()
