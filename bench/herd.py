"""Herd: 256 concurrent clients on the DB manifest and the DB blob, ``serve`` against nginx serving the static tree
of the same store, in the same run (issue 16). Run by hand, never by CI:

    PYTHONPATH=$PWD/src python3 bench/herd.py [--size 64M] [--connections 256] [--duration 5] [--rounds 2]

One docker-registry is seeded with a DB of ``--size`` (and the small assets); ``sync`` fills a store and
``sync --to static:DIR`` a tree; ``serve --no-sync`` serves the store (``--workers N`` too, when given) and
nginx (deploy/static's config, one worker per serve process) serves the tree. wrk drives each in turn, alternating,
with ``--connections`` connections: manifests (req/s, p99, errors and non-2xx) and the blob (MB/s). Peak RSS is
the largest process of each server (reset before each run). Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

import artifact  # noqa: E402
from run import (  # noqa: E402
    MIB,
    WRK_DONE,
    BenchRegistry,
    checked,
    find_tool,
    free_port,
    log,
    machine,
    parse_size,
    peak_rss_mib,
    reset_peak_rss,
    seed_source,
    timed,
    wait_http,
    wrk,
)
from sections import marks, write_section  # noqa: E402
from tests.support.nginx import Nginx  # noqa: E402

START, END = marks("herd")
MANIFEST_PATH = "/v2/aquasec/trivy-db/manifests/2"


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


class Contender:
    """A server under test: its URL and the processes whose RSS counts."""

    def __init__(self, name: str, host: str, pids: list[int]) -> None:
        self.name, self.host, self.pids = name, host, pids

    def reset(self) -> None:
        for pid in self.pids:
            reset_peak_rss(pid)

    def peak_rss(self) -> float:
        return max(peak_rss_mib(pid) for pid in self.pids)


def start_serve(tool: str, store: Path, workers: int, work: Path) -> tuple[subprocess.Popen[bytes], Contender]:
    port = free_port()
    args = [tool, "serve", "--store", str(store), "--listen", f"127.0.0.1:{port}", "--no-sync"]
    if workers > 1:
        args += ["--workers", str(workers)]
    with (work / f"serve-{workers}.log").open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/v2/", process)
    time.sleep(0.5 * workers)  # every worker listening
    pids = [process.pid, *children(process.pid)]
    return process, Contender(f"trivy-mirror serve ({workers} process{'es' if workers > 1 else ''})",
                              f"127.0.0.1:{port}", pids)


class TunedNginx(Nginx):
    """deploy/static's nginx with ``workers`` worker processes and room for the herd's connections."""

    def __init__(self, tree: Path, work: Path, workers: int) -> None:
        super().__init__(tree, work)
        self.workers = workers

    def write_config(self) -> Path:
        main = super().write_config()
        main.write_text(main.read_text().replace("worker_processes 1;", f"worker_processes {self.workers};")
                        .replace("worker_connections 1024;", "worker_connections 4096;"))
        return main


def start_nginx(tree: Path, work: Path, workers: int) -> tuple[Nginx, Contender]:
    nginx = TunedNginx(tree, work / f"nginx-{workers}", workers).start()
    assert nginx._process is not None
    time.sleep(0.3)
    return nginx, Contender(f"nginx ({workers} worker{'s' if workers > 1 else ''})", nginx.host,
                            children(nginx._process.pid))


def measure(contenders: list[Contender], blob_path: str, args: argparse.Namespace, script: Path,
            ) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {c.name: {} for c in contenders}
    for contender in contenders:  # warm up
        wrk(script, f"http://{contender.host}{MANIFEST_PATH}", 32, 1, 1)
    for round_number in range(args.rounds):
        order = contenders if round_number % 2 == 0 else list(reversed(contenders))
        for contender in order:
            into = figures[contender.name]
            contender.reset()
            manifests = wrk(script, f"http://{contender.host}{MANIFEST_PATH}", args.connections, args.threads,
                            args.duration)
            blob = wrk(script, f"http://{contender.host}{blob_path}", args.connections, args.threads, args.duration)
            for key, value in (("manifest_rps", manifests["requests_per_s"]), ("manifest_p99", manifests["p99_ms"]),
                               ("blob_mbps", blob["mb_per_s"]),
                               ("errors", manifests["errors"] + blob["errors"]),
                               ("non_2xx", manifests["non_2xx"] + blob["non_2xx"]),
                               ("rss", contender.peak_rss())):
                into.setdefault(key, []).append(value)
            log(f"  {contender.name}: manifests {manifests['requests_per_s']:.0f} req/s, blob "
                f"{blob['mb_per_s']:.0f} MB/s, errors {manifests['errors'] + blob['errors']:.0f}")
    return figures


def render(figures: dict[str, dict[str, list[float]]], args: argparse.Namespace, pairs: list[tuple[str, str]],
           ) -> str:
    info = machine()
    lines = [START, "## Herd: serve against nginx serving the static tree", "",
             f"`python3 bench/herd.py --size {args.size // MIB}M --connections {args.connections} --duration "
             f"{args.duration:g} --rounds {args.rounds} --workers {args.workers}`; {args.connections} concurrent "
             f"wrk connections ({args.threads} threads) on loopback, each server in turn, alternating; medians of "
             f"{args.rounds} rounds. Machine: {info.get('cpu', '?')} (shared with other work: the ranges show the "
             f"spread). The static tree is `sync --to static:DIR` of the same "
             f"store, served with deploy/static's nginx config.", "",
             "| server | manifests req/s | manifest p99 | DB blob MB/s | errors | non-2xx | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for name, into in figures.items():
        lines.append(f"| {name} | {statistics.median(into['manifest_rps']):.0f} "
                     f"({min(into['manifest_rps']):.0f}-{max(into['manifest_rps']):.0f}) | "
                     f"{statistics.median(into['manifest_p99']):.1f} ms | {statistics.median(into['blob_mbps']):.0f} | "
                     f"{sum(into['errors']):.0f} | {sum(into['non_2xx']):.0f} | {max(into['rss']):.0f} MiB |")
    lines.append("")
    for serve, nginx in pairs:
        ratio = statistics.median(figures[serve]["manifest_rps"]) / statistics.median(figures[nginx]["manifest_rps"])
        blobs = statistics.median(figures[serve]["blob_mbps"]) / statistics.median(figures[nginx]["blob_mbps"])
        lines.append(f"- **Manifest-GET ratio {serve} / {nginx}: {ratio:.2f}x**; DB blob ratio {blobs:.2f}x.")
    lines += ["", END]
    return "\n".join(lines) + "\n"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=64 * MIB, help="DB layer size (default 64M)")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--duration", type=float, default=5, help="seconds of each wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure serve --workers N against nginx with N workers (default 1: only one)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "trivy-mirror-herd")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = parser.parse_args()
    work = args.workdir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    tool = find_tool()
    script = work / "done.lua"
    script.write_text(WRK_DONE)
    art = artifact.build(work / "artifact", args.size)
    blob_path = f"/v2/aquasec/trivy-db/blobs/{art.layer_digest}"
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(BenchRegistry(work / "registry", cache=True))
        seed_source(src, art, small_assets=True)
        store, tree = work / "store", work / "tree"
        checked(timed([tool, "sync", "--store", str(store), "--from", f"{src.host}/aquasec"]), "sync")
        checked(timed([tool, "sync", "--to", f"static:{tree}", "--from", f"{src.host}/aquasec"]), "sync static")
        contenders, pairs = [], []
        for workers in sorted({1, args.workers}):
            process, serve = start_serve(tool, store, workers, work)
            stack.callback(stop, process)
            nginx, static = start_nginx(tree, work, workers)
            stack.callback(nginx.stop)
            contenders += [serve, static]
            pairs.append((serve.name, static.name))
        figures = measure(contenders, blob_path, args, script)
    text = render(figures, args, pairs)
    write_section(args.out, "herd", text)
    print(text)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
