#!/usr/bin/env python3
"""trivy-mirror benchmark harness: see bench/README.md. Run by hand, never by CI.

    python bench/run.py                     # full run, 1 GiB artifact, writes bench/RESULTS.md
    python bench/run.py --size 128M --runs 2 --only copy,sync
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

import artifact  # noqa: E402
from tests.support.registry import RegistryProcess, free_port, push_artifact  # noqa: E402
from tests.support.trivy_assets import build_checks_bundle, build_java_db  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20
SECTIONS = ("copy", "sync", "noop", "serve")
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"

TARGETS = {
    "copy_vs_skopeo": 0.90,
    "copy_vs_floor": 1.10,
    "sync_vs_floor": 1.20,
    "rss_copy_sync_mib": 80,
    "noop_wall_s": 1.0,
    "serve_manifests_ratio": 2.0,
    "serve_blobs_ratio": 1.0,
    "serve_rss_64_mib": 120,
}

WRK_DONE = """\
done = function(summary, latency, requests)
  io.write(string.format("BENCH bytes=%d duration_us=%d requests=%d errors=%d p50_us=%d p99_us=%d\\n",
    summary.bytes, summary.duration, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 1G, 256M)")
    scale = {"": 1, "K": 1 << 10, "M": MIB, "G": GIB}[match[2].upper()]
    return int(float(match[1]) * scale)


# ---------------------------------------------------------------------------------------------------- processes


@dataclass
class Run:
    """One timed process: wall seconds, peak RSS (its own and its waited-for children's largest), exit code."""

    wall: float
    maxrss_mib: float
    rc: int
    stdout: str
    stderr: str
    extra: dict[str, object] = field(default_factory=dict)


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    # Peak RSS comes from GNU time, not from wait4() here: a child forked from this (large) Python process
    # inherits its resident set high-water mark across exec.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name, *cmd], stdout=out, stderr=err,
                              env=env, cwd=cwd, check=False)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        maxrss_kib, user, system = rss.read().strip().splitlines()[-1].split()
        run = Run(wall, int(maxrss_kib) / 1024, proc.returncode, out.read().decode(errors="replace"),
                  err.read().decode(errors="replace"))
        run.extra["cpu_s"] = round(float(user) + float(system), 2)
        return run


def checked(run: Run, what: str) -> Run:
    if run.rc != 0:
        raise RuntimeError(f"{what} failed (exit {run.rc}):\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    return run


class LoadSampler:
    """Samples the 1-minute load average and whole-machine CPU use once a second in the background."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (time, loadavg1, cpu busy fraction)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _cpu() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    def _run(self) -> None:
        total, idle = self._cpu()
        while not self._stop.wait(1.0):
            t2, i2 = self._cpu()
            busy = 1 - (i2 - idle) / max(1, t2 - total)
            total, idle = t2, i2
            self.samples.append((time.monotonic(), os.getloadavg()[0], busy))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, start: float, end: float) -> dict[str, float]:
        picked = [s for s in self.samples if start <= s[0] <= end + 1] or self.samples[-1:]
        if not picked:
            return {}
        return {"load1": round(statistics.median(s[1] for s in picked), 2),
                "cpu_busy": round(statistics.median(s[2] for s in picked), 2)}


# ---------------------------------------------------------------------------------------------------- registries


class BenchRegistry(RegistryProcess):
    """The test suite's docker-registry, optionally with Debian's default in-memory blob descriptor cache."""

    def __init__(self, workdir: Path, *, cache: bool) -> None:
        super().__init__(workdir)
        self.cache = cache

    def _write_config(self) -> Path:
        path = super()._write_config()
        if self.cache:
            config = json.loads(path.read_text())
            config["storage"]["cache"] = {"blobdescriptor": "inmemory"}
            path.write_text(json.dumps(config, indent=2))
        return path

    def wipe(self) -> None:
        """Drop every repository and blob (between runs of a destination registry, which has no cache)."""
        shutil.rmtree(self.storage_dir / "docker", ignore_errors=True)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the registry process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_push_blob(host: str, repo: str, path: Path, digest: str) -> None:
    location = subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "-D", "-", "-X", "POST", f"http://{host}/v2/{repo}/blobs/uploads/"],
        check=True, capture_output=True, text=True).stdout
    loc = next(line.split(":", 1)[1].strip() for line in location.splitlines() if line.lower().startswith("location:"))
    if not loc.startswith("http"):
        loc = f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
                    "-T", str(path), f"{loc}{sep}digest={digest}"], check=True)


def http_put(url: str, data: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def manifest_digest(host: str, repo: str, tag: str) -> str | None:
    request = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers.get("Docker-Content-Digest")
    except OSError:
        return None


def seed_source(registry: BenchRegistry, art: artifact.BigArtifact, small_assets: bool) -> None:
    host = registry.host
    repo = "aquasec/trivy-db"
    curl_push_blob(host, repo, art.layer_path, art.layer_digest)
    tmp = registry.workdir / "config.blob"
    tmp.write_bytes(art.config)
    curl_push_blob(host, repo, tmp, art.config_digest)
    http_put(f"http://{host}/v2/{repo}/manifests/2", art.manifest, artifact.OCI_MANIFEST)
    if small_assets:
        push_artifact(host, "aquasec/trivy-java-db", "1", build_java_db())
        push_artifact(host, "aquasec/trivy-checks", "2", build_checks_bundle(version="2.1.0"))
        push_artifact(host, "aquasec/trivy-checks", "1", build_checks_bundle(version="1.9.0"))


# ---------------------------------------------------------------------------------------------------- the harness


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir: Path = args.workdir
        self.runs: int = args.runs
        self.sampler = LoadSampler()
        self.results: dict[str, object] = {"size": args.size, "runs": args.runs}
        self.tool = find_tool()
        home = self.workdir / "home"
        for sub in ("config", "state", "data", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("TRIVY_MIRROR_") and k.lower() not in ("http_proxy", "https_proxy")}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"),
                        XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"), DOCKER_CONFIG=str(home),
                        # This checkout is what gets measured, whatever an editable install points at.
                        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
        self.served_store: Path | None = None

    # -- helpers

    def measure(self, label: str, cmd: list[str], registries: dict[str, BenchRegistry] | None = None) -> Run:
        """Run ``cmd`` once; also records the CPU the given registries spent meanwhile (where the time goes)."""
        before = {name: registry.cpu_seconds() for name, registry in (registries or {}).items()}
        start = time.monotonic()
        run = timed(cmd, self.env)
        run.extra.update(self.sampler.window(start, time.monotonic()))
        for name, registry in (registries or {}).items():
            run.extra[f"{name}_registry_cpu_s"] = round(registry.cpu_seconds() - before[name], 2)
        log(f"  {label}: {run.wall:.2f} s, CPU {run.extra['cpu_s']} s, peak RSS {run.maxrss_mib:.0f} MiB, "
            f"load {run.extra.get('load1')}")
        return run

    @staticmethod
    def settle() -> None:
        """Write dirty pages back so one run's writeback does not slow the next one down."""
        os.sync()
        time.sleep(0.5)

    def rounds(self, names: list[str]) -> Iterator[tuple[int, str]]:
        """Every contender once per round, the order rotated every round."""
        for index in range(self.runs):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                yield index, name

    # -- sections

    def copy(self, src: BenchRegistry, dst: BenchRegistry, art: artifact.BigArtifact) -> None:
        log("copy: registry to registry")
        floor_script = self.workdir / "curl-copy.sh"
        manifest_file = self.workdir / "manifest.json"
        manifest_file.write_bytes(art.manifest)
        floor_script.write_text(f"""\
set -euo pipefail
SRC=http://{src.host}; DST=http://{dst.host}; REPO=$1
start() {{
  loc=$(curl -sf -o /dev/null -D - -X POST "$DST/v2/$REPO/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="$DST$loc";; esac
  case $loc in *\\?*) echo "$loc&";; *) echo "$loc?";; esac
}}
printf '{{}}' | curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Content-Length: 2' \\
  -T - "$(start)digest={art.config_digest}"
curl -sf "$SRC/v2/aquasec/trivy-db/blobs/{art.layer_digest}" \\
  | curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \\
      -H 'Content-Length: {art.layer_size}' -H 'Transfer-Encoding:' -T - "$(start)digest={art.layer_digest}"
curl -sf -o /dev/null -X PUT -H 'Content-Type: {artifact.OCI_MANIFEST}' --data-binary @{manifest_file} \\
  "$DST/v2/$REPO/manifests/2"
""")
        commands: dict[str, Callable[[str], list[str]]] = {
            "trivy-mirror": lambda repo: [self.tool, "copy", f"{src.host}/aquasec/trivy-db:2", f"{dst.host}/{repo}:2"],
            "skopeo": lambda repo: ["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
                                    "--dest-tls-verify=false", f"docker://{src.host}/aquasec/trivy-db:2",
                                    f"docker://{dst.host}/{repo}:2"],
            "curl floor": lambda repo: ["bash", str(floor_script), repo],
        }
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for index, name in self.rounds(list(commands)):
            repo = f"bench/{name.replace(' ', '-')}-{index}/trivy-db"
            self.settle()
            run = checked(self.measure(f"{name} #{index + 1}", commands[name](repo), {"src": src, "dst": dst}),
                          name)
            got = manifest_digest(dst.host, repo, "2")
            if got != art.manifest_digest:
                raise RuntimeError(f"{name}: destination has {got}, expected {art.manifest_digest}")
            runs[name].append(run)
            dst.wipe()
        self.results["copy"] = summarize(runs)

    def sync(self, src: BenchRegistry, art: artifact.BigArtifact) -> None:
        log("sync: registry into the store")
        area = self.workdir / "sync"
        shutil.rmtree(area, ignore_errors=True)
        area.mkdir()
        url = f"http://{src.host}/v2/aquasec/trivy-db/blobs/{art.layer_digest}"
        runs: dict[str, list[Run]] = {"trivy-mirror": [], "curl + sha256sum floor": []}
        last_store: Path | None = None
        for index, name in self.rounds(list(runs)):
            self.settle()
            if name == "trivy-mirror":
                store = area / f"store-{index}"
                cmd = [self.tool, "sync", "--store", str(store), "--from", f"{src.host}/aquasec", "--assets", "db",
                       "--json"]
                run = checked(self.measure(f"{name} #{index + 1}", cmd, {"src": src}), name)
                result = json.loads(run.stdout)["results"][0]
                if result["outcome"] != "updated":
                    raise RuntimeError(f"sync did not copy: {result}")
                run.extra["in_process_s"] = result["seconds"]
                if last_store is not None:
                    shutil.rmtree(last_store, ignore_errors=True)
                last_store = store
            else:
                target = area / f"blob-{index}"
                cmd = ["bash", "-c", 'curl -sf -o "$1" "$2" && sha256sum "$1"', "floor", str(target), url]
                run = checked(self.measure(f"{name} #{index + 1}", cmd, {"src": src}), name)
                if run.stdout.split()[0] != art.layer_digest.removeprefix("sha256:"):
                    raise RuntimeError(f"floor: wrong digest {run.stdout}")
                target.unlink()
            runs[name].append(run)
        self.results["sync"] = summarize(runs)
        self.served_store = last_store

    def noop(self, src: BenchRegistry) -> None:
        log("noop: re-sync of every asset, nothing changed upstream")
        store = self.served_store or (self.workdir / "sync" / "store-noop")
        cmd = [self.tool, "sync", "--store", str(store), "--from", f"{src.host}/aquasec", "--json"]
        first = checked(timed(cmd, self.env), "first full sync")
        log(f"  first sync of all assets: {first.wall:.2f} s")
        self.served_store = store
        runs: list[Run] = []
        for index in range(max(3, self.runs)):
            baseline = timed([self.tool, "--version"], self.env)
            before = src.access_log()
            run = checked(self.measure(f"no-op #{index + 1}", cmd), "no-op sync")
            entries = src.access_log()[len(before):]
            results = json.loads(run.stdout)["results"]
            run.extra.update(
                startup_s=round(baseline.wall, 3),
                outcomes=sorted({r["outcome"] for r in results}),
                tags=len(results),
                in_process_s=max(r["seconds"] for r in results),
                requests=len(entries),
                manifest_requests=sum("/manifests/" in e.path for e in entries),
                blob_requests=sum("/blobs/" in e.path for e in entries),
                other_requests=[f"{e.method} {e.path}" for e in entries
                                if "/manifests/" not in e.path and "/blobs/" not in e.path],
            )
            runs.append(run)
        self.results["noop"] = summarize({"trivy-mirror": runs})

    def serve(self, src: BenchRegistry, art: artifact.BigArtifact) -> None:
        log("serve: trivy-mirror serve against docker-registry")
        help_run = timed([self.tool, "serve", "--help"], self.env)
        if help_run.rc != 0:
            log("  trivy-mirror serve is not available; skipped")
            self.results["serve"] = {"skipped": "trivy-mirror serve --help failed"}
            return
        store = self.served_store
        if store is None:
            store = self.workdir / "serve-store"
            checked(timed([self.tool, "sync", "--store", str(store), "--from", f"{src.host}/aquasec"], self.env),
                    "sync for serve")
        port = free_port()
        log_path = self.workdir / "serve.log"
        with log_path.open("wb") as out:
            server = subprocess.Popen([self.tool, "serve", "--store", str(store), "--listen", f"127.0.0.1:{port}",
                                       "--no-sync"], stdout=out, stderr=subprocess.STDOUT, env=self.env)
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/", server)
            self._serve_load(server.pid, f"127.0.0.1:{port}", src, art)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    def _serve_load(self, server_pid: int, server_host: str, src: BenchRegistry, art: artifact.BigArtifact) -> None:
        script = self.workdir / "done.lua"
        script.write_text(WRK_DONE)
        hosts = {"trivy-mirror serve": (server_host, server_pid), "docker-registry": (src.host, src.pid or 0)}
        manifest_path = "/v2/aquasec/trivy-db/manifests/2"
        blob_path = f"/v2/aquasec/trivy-db/blobs/{art.layer_digest}"
        for host, _ in hosts.values():  # warm up: caches, page cache, connections
            wrk(script, f"http://{host}{manifest_path}", 32, 1, 2)
            curl_load(f"http://{host}{blob_path}", 8, 2)
        manifests: dict[str, list[dict[str, float]]] = {name: [] for name in hosts}
        blobs: dict[str, list[dict[str, float]]] = {name: [] for name in hosts}
        rss: dict[str, list[float]] = {name: [] for name in hosts}
        for _, name in self.rounds(list(hosts)):
            host, pid = hosts[name]
            reset_peak_rss(pid)
            start = time.monotonic()
            result = wrk(script, f"http://{host}{manifest_path}", 32, self.args.wrk_threads_manifest,
                         self.args.duration)
            result.update(self.sampler.window(start, time.monotonic()))
            manifests[name].append(result)
            log(f"  {name} manifests: {result['requests_per_s']:.0f} req/s, load {result.get('load1')}")
            start = time.monotonic()
            result = curl_load(f"http://{host}{blob_path}", 8, self.args.duration)
            result.update(self.sampler.window(start, time.monotonic()))
            blobs[name].append(result)
            rss[name].append(peak_rss_mib(pid))
            log(f"  {name} blobs: {result['mb_per_s']:.0f} MB/s, load {result.get('load1')}")
        rss64: dict[str, float] = {}
        for name, (host, pid) in hosts.items():
            reset_peak_rss(pid)
            result = wrk(script, f"http://{host}{blob_path}", 64, 2, self.args.duration)
            rss64[name] = peak_rss_mib(pid)
            log(f"  {name} 64 blob downloads: peak RSS {rss64[name]:.0f} MiB, {result['mb_per_s']:.0f} MB/s")
        self.results["serve"] = {
            "manifests": {n: median_of(v, "requests_per_s") | {"runs": v} for n, v in manifests.items()},
            "blobs": {n: median_of(v, "mb_per_s") | {"runs": v} for n, v in blobs.items()},
            "peak_rss_mib": {n: max(v) for n, v in rss.items()},
            "peak_rss_64_mib": rss64,
        }

    # -- driver

    def run(self) -> None:
        self.sampler.start()
        started = time.monotonic()
        self.results["machine"] = machine()
        self.results["measured"] = measured_code(self.tool, self.env)
        self.results["load_before"] = os.getloadavg()
        sections = set(self.args.only)
        log(f"building a {self.args.size / MIB:.0f} MiB DB artifact (cached in {self.workdir})")
        art = artifact.build(self.workdir / "artifact", self.args.size)
        self.results["artifact"] = {"layer_digest": art.layer_digest, "layer_size": art.layer_size,
                                    "manifest_digest": art.manifest_digest}
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(BenchRegistry(self.workdir / "registry-src", cache=True))
            dst = stack.enter_context(BenchRegistry(self.workdir / "registry-dst", cache=False))
            log(f"source registry {src.host}, destination registry {dst.host}")
            seed_source(src, art, small_assets=True)
            if "copy" in sections:
                self.copy(src, dst, art)
            if "sync" in sections:
                self.sync(src, art)
            if "noop" in sections:
                self.noop(src)
            if "serve" in sections:
                self.serve(src, art)
        self.results["load_after"] = os.getloadavg()
        self.results["seconds"] = round(time.monotonic() - started, 1)
        self.sampler.stop()
        self.results["load_samples"] = summarize_load(self.sampler.samples)


# ---------------------------------------------------------------------------------------------------- measures


def find_tool() -> str:
    """The console script pip installed (not a version manager's shim, which would add its own start-up)."""
    import sysconfig

    script = Path(sysconfig.get_path("scripts")) / "trivy-mirror"
    if script.exists():
        return str(script)
    return shutil.which("trivy-mirror") or sys.exit("trivy-mirror is not installed (pip install -e .)")


def measured_code(tool: str, env: dict[str, str]) -> dict[str, str]:
    """Which source tree the tool runs from, and its git state (uncommitted changes are measured too)."""
    where = subprocess.run([sys.executable, "-c", "import trivy_mirror; print(trivy_mirror.__file__)"], env=env,
                           capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True).stdout.split("\n")
    return {"tool": tool, "package": where, "commit": head,
            "uncommitted": ", ".join(line[3:] for line in dirty if line.strip()) or "none"}


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wrk(script: Path, url: str, connections: int, threads: int, duration: float) -> dict[str, float]:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "60s",
           "-s", str(script), "-H", f"Accept: {MANIFEST_ACCEPT}", url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    match = re.search(r"BENCH bytes=(\d+) duration_us=(\d+) requests=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)",
                      out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    size, micros, requests, errors, p50, p99 = (int(v) for v in match.groups())
    seconds = micros / 1e6
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": requests / seconds, "mb_per_s": size / seconds / 1e6, "errors": errors,
            "non_2xx": int(non_2xx[1]) if non_2xx else 0, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}


def curl_load(url: str, connections: int, duration: float) -> dict[str, float]:
    """``connections`` curl processes fetching ``url`` back to back for ``duration`` seconds; bytes received.

    For 1 GiB blobs this measures the server better than wrk, which reads 8 KiB at a time and runs out of CPU
    first (curl reads 100 KiB at a time); an unfinished download counts with the bytes it got.
    """
    deadline = time.monotonic() + duration
    received = [0] * connections
    completed = [0] * connections
    failures = [0] * connections

    def worker(index: int) -> None:
        while (left := deadline - time.monotonic()) > 0.05:
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{http_code}",
                                  "--max-time", f"{left:.3f}", url], capture_output=True, text=True)
            size, code = out.stdout.split()
            received[index] += int(float(size))
            if out.returncode == 0 and code == "200":
                completed[index] += 1
            elif out.returncode != 28:  # 28: stopped at the deadline
                failures[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    return {"mb_per_s": sum(received) / seconds / 1e6, "requests_per_s": sum(completed) / seconds,
            "errors": sum(failures), "non_2xx": 0, "p50_ms": 0.0, "p99_ms": 0.0}


def reset_peak_rss(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_of(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    return {"median": statistics.median(r[key] for r in runs), "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs)}


def summarize(runs: dict[str, list[Run]]) -> dict[str, object]:
    summary: dict[str, object] = {}
    for name, items in runs.items():
        summary[name] = {
            "wall_median": statistics.median(r.wall for r in items),
            "wall_min": min(r.wall for r in items),
            "wall_max": max(r.wall for r in items),
            "maxrss_mib": max(r.maxrss_mib for r in items),
            "runs": [{"wall": round(r.wall, 3), "maxrss_mib": round(r.maxrss_mib, 1), **r.extra} for r in items],
        }
    return summary


def summarize_load(samples: list[tuple[float, float, float]]) -> dict[str, float]:
    if not samples:
        return {}
    loads = [s[1] for s in samples]
    busy = [s[2] for s in samples]
    return {"load1_median": round(statistics.median(loads), 2), "load1_max": round(max(loads), 2),
            "cpu_busy_median": round(statistics.median(busy), 2)}


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    import aiohttp

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores{' (SHA-NI)' if ' sha_ni' in flags else ''}",
        "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "skopeo": version_of(["skopeo", "--version"]),
        "curl": version_of(["curl", "--version"]),
        "docker-registry": version_of(["docker-registry", "--version"]),
        "wrk": version_of(["wrk", "--version"]),
    }


# ---------------------------------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=GIB, help="DB layer size (default 1G)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each contender, alternated (default 5)")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(SECTIONS),
                        help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--duration", type=float, default=5, help="seconds of each wrk run (default 5)")
    parser.add_argument("--wrk-threads-manifest", type=int, default=1, help="wrk threads for manifests (default 1)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "trivy-mirror-bench")
    parser.add_argument("--out", type=Path, help="Markdown report (default bench/RESULTS.md for a 1 GiB run, "
                                                 "else WORKDIR/RESULTS.md)")
    args = parser.parse_args()
    args.workdir = args.workdir.absolute()
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    bench = Bench(args)
    bench.run()
    results = bench.results
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    out = args.out or (BENCH_DIR / "RESULTS.md" if args.size == GIB else args.workdir / "RESULTS.md")
    import report
    from sections import marked_sections

    kept = marked_sections(out.read_text()) if out.exists() else ""  # soak, startup, herd: their own scripts'
    out.write_text(report.render(results, TARGETS) + (f"\n{kept}" if kept else ""))
    log(f"results: {out} (raw: {args.workdir / 'results.json'}), {results['seconds']} s")


if __name__ == "__main__":
    main()
