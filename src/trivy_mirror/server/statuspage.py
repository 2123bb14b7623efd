"""``GET /``: the mirror's state on one plain HTML page, for a person with a browser.

Per asset the version served (digest, size, UpdatedAt, NextUpdate), whether it is fresh, and its last attempts
(the history the state keeps); the trust decisions (pins with who, when and why; held candidates with the reason,
since when, their digest and what each source reported; where the served version came from); the VEX
repositories; the client census; and how to point Trivy at this mirror (``trivy-config``'s own output for this
server's URL). Server-rendered, every value escaped, inline CSS only,
no script (the Content-Security-Policy forbids any), so it works without JavaScript and loads nothing else.

Who may see it: with auth on, only requests with valid credentials, even with ``--anonymous-pull``: the page
shows what ``/readyz`` shows only to credentialed clients (sync errors naming upstream hosts, the census). An
anonymous request gets 401 with a Basic challenge (when there is an htpasswd file) so a browser asks for the
user and password; token holders send ``Authorization: Bearer``.

Work per request is bounded: a rendered page is reused for :data:`REUSE_SECONDS` (per mirror URL, at most
:data:`MAX_CACHED` of them, since the URL follows the Host header when no public URL is set), and one render
runs at a time, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from trivy_mirror.catalog import assets
from trivy_mirror.catalog.attempt import Attempt
from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.catalog.state import attempt_history
from trivy_mirror.errors import InvalidReference, MirrorError
from trivy_mirror.oci.reference import validate_registry
from trivy_mirror.server.settings import ServerSettings, parse_listen
from trivy_mirror.store import Store
from trivy_mirror.timefmt import iso, parse_time
from trivy_mirror.trivyconf import ClientConfig, flag_line, parse_mirror, repository_yaml, trivy_yaml
from trivy_mirror.version import __version__
from trivy_mirror.vex.storage import VexRepository, served_names

log = logging.getLogger(__name__)

REUSE_SECONDS = 2.0
MAX_CACHED = 4
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_SPECS = {spec.name: spec for spec in assets.CATALOG}
INTEGRATION_FORMATS = "trivy-operator, harbor, gitlab, github-action"

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:78rem;padding:1rem 1.5rem;color:#1b1f24}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.3rem 0}th,td{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #e5e8eb;vertical-align:top}th{background:#f3f5f7;font-weight:600}
code,pre{font:12.5px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;
overflow-x:auto}.state{display:inline-block;padding:0 .5rem;border-radius:.7rem;font-weight:600;color:#fff}
.fresh,.ok,.imported{background:#1a7f37}.stale,.refused,.held,.pinned{background:#9a6700}.missing,.failed{background:#cf222e}
.none{background:#6e7781}.muted{color:#57606a}.banner{padding:.6rem .8rem;border-radius:.4rem;margin:.6rem 0;
font-weight:600}.banner.ready{background:#dafbe1}.banner.unready{background:#ffebe9}
details summary{cursor:pointer;color:#0969da}time,.size{white-space:nowrap}.msg{max-width:34rem;overflow-wrap:anywhere}
"""


def e(value: object) -> str:
    """Escaped text (quotes too: every value may land in an attribute)."""
    return escape("" if value is None else str(value), quote=True)


def _ago(moment: datetime | None, now: datetime) -> str:
    """``2026-01-01T00:00:00Z (3 h ago)``."""
    if moment is None:
        return "—"
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    amount = (f"{int(span)} s" if span < 120 else f"{int(span // 60)} min" if span < 7200
              else f"{int(span // 3600)} h" if span < 172800 else f"{int(span // 86400)} d")
    relative = f"in {amount}" if seconds > 0 else f"{amount} ago"
    shown = iso(moment.replace(microsecond=0))
    return f'<time datetime="{e(iso(moment))}">{e(shown)}</time> <span class="muted">({relative})</span>'


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _badge(word: str | None) -> str:
    return f'<span class="state {e(word or "none")}">{e(word or "never")}</span>'


@dataclass(frozen=True)
class Snapshot:
    """Everything one page shows, read together off the event loop."""

    statuses: list[AssetStatus]
    histories: dict[str, tuple[Attempt, ...]]
    """Asset reference -> its last attempts, newest first."""
    vex_served: list[str]
    clients: list[dict[str, Any]]
    sync: dict[str, object] | None
    credentials_problems: list[str]


class StatusPage:
    """The ``GET /`` handler; ``authenticated`` is None with auth off."""

    def __init__(self, settings: ServerSettings, store_root: Path, statuses: Callable[[], list[AssetStatus]],
                 clients: Callable[[], list[dict[str, Any]]], sync: Callable[[], dict[str, object] | None],
                 authenticated: Callable[[web.Request], Awaitable[bool]] | None = None,
                 problems: Callable[[], list[str]] = list) -> None:
        self._settings = settings
        self._store_root = store_root
        self._statuses = statuses
        self._clients = clients
        self._sync = sync
        self._authenticated = authenticated
        self._problems = problems
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._authenticated is not None and not await self._authenticated(request):
            return self._unauthorized()
        url = self.mirror_url(request)
        async with self._lock:
            cached = self._cache.get(url)
            if cached is None or time.monotonic() - cached[0] > REUSE_SECONDS:
                try:
                    statuses, histories, vex_served = await asyncio.to_thread(self._read_store)
                except Exception as err:  # the page must say so, as /readyz does, not die with a bare 500
                    log.exception("cannot read the mirror's state for the status page")
                    detail = err.strerror if isinstance(err, OSError) and err.strerror else "see the server log"
                    body = (f"<!doctype html><title>trivy-mirror: unavailable</title><p>Cannot read the mirror's "
                            f"state: {e(detail)}.</p>")  # never the exception text: it names files of the store
                    return web.Response(status=503, text=body, content_type="text/html", charset="utf-8",
                                        headers=HTML_HEADERS)
                # The census and the scheduler change on the event loop: read them here, not in the thread.
                snapshot = Snapshot(statuses, histories, vex_served, self._clients(), self._sync(),
                                    self._problems() if self._authenticated is not None else [])
                cached = (time.monotonic(), render(snapshot, url, self._settings, datetime.now(UTC)))
                self._cache[url] = cached
            self._cache.move_to_end(url)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return web.Response(text=cached[1], content_type="text/html", charset="utf-8", headers=HTML_HEADERS)

    def _unauthorized(self) -> web.Response:
        """401 with the challenges this server can take: Basic (a browser asks for the user) and Bearer."""
        headers = list(HTML_HEADERS.items())
        if self._settings.htpasswd is not None:
            headers.append(("WWW-Authenticate", 'Basic realm="trivy-mirror status", charset="UTF-8"'))
        if self._settings.token_file is not None:
            headers.append(("WWW-Authenticate", 'Bearer realm="trivy-mirror status"'))
        body = ("<!doctype html><title>trivy-mirror: sign in</title><p>This mirror's status page needs the "
                "credentials of the registry API (a user of the htpasswd file, or a bearer token).</p>")
        return web.Response(status=401, text=body, content_type="text/html", charset="utf-8", headers=headers)

    def mirror_url(self, request: web.Request) -> str:
        """The URL clients reach this server at: the public URL, else the host this request named."""
        if self._settings.public_url:
            return self._settings.public_url.rstrip("/")
        try:
            host = validate_registry(request.host)
        except InvalidReference:
            listen_host, port = parse_listen(self._settings.listen)
            host = f"[{listen_host}]:{port}" if ":" in listen_host else f"{listen_host}:{port}"
        return f"{self._settings.scheme}://{host}"

    def _read_store(self) -> tuple[list[AssetStatus], dict[str, tuple[Attempt, ...]], list[str]]:
        """The asset rows, their attempt histories and the served VEX repositories (file reads: in a thread)."""
        statuses = self._statuses()
        store = Store(self._store_root)
        histories: dict[str, tuple[Attempt, ...]] = {}
        for row in statuses:
            try:
                histories[row.reference] = self._history(store, row)
            except MirrorError:
                histories[row.reference] = ()
        try:
            vex_served = served_names(self._store_root)
        except (MirrorError, OSError):
            vex_served = []
        return statuses, histories, vex_served

    def _history(self, store: Store, row: AssetStatus) -> tuple[Attempt, ...]:
        if row.asset == "vex":
            return VexRepository(self._store_root, row.reference.removeprefix("vex/")).load().history
        spec = _SPECS.get(row.asset)
        if spec is None:
            return ()
        tag = row.reference.rpartition(":")[2]
        return attempt_history(store.layout(spec.mirror_repository).read_state(), tag)


def render(snapshot: Snapshot, url: str, settings: ServerSettings, now: datetime) -> str:
    """The whole page."""
    rows = [row for row in snapshot.statuses if row.asset != "vex"]
    vex_rows = [row for row in snapshot.statuses if row.asset == "vex"]
    ready = all(row.ready for row in snapshot.statuses)
    unready = [row.reason for row in snapshot.statuses if not row.ready]
    banner = ('<div class="banner ready">Ready: every asset is in the mirror and fresh.</div>' if ready else
              '<div class="banner unready">Not ready: ' + "; ".join(e(reason) for reason in unready) + "</div>")
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>trivy-mirror at {e(url)}</title><style>{CSS}</style></head><body>",
        f"<h1>trivy-mirror at <code>{e(url)}</code></h1>",
        f'<p class="muted">trivy-mirror {e(__version__)} · rendered {_ago(now, now)} · '
        f'machine-readable: <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></p>',
        banner,
        _sync_section(snapshot.sync, now),
        "<h2>Assets</h2>",
        _asset_table(rows, snapshot.histories, now),
        "<h2>Pins, holds and provenance</h2>",
        _trust_table(rows, now),
        "<h2>VEX repositories</h2>",
        _vex_table(vex_rows, snapshot.histories, url, now) if vex_rows else "<p>This mirror serves none.</p>",
        "<h2>Clients</h2>",
        _census_table(snapshot.clients),
        "<h2>Point Trivy at this mirror</h2>",
        _client_config(url, snapshot.vex_served, settings),
    ]
    if snapshot.credentials_problems:
        parts += ["<h2>Credentials files</h2><ul>",
                  *(f"<li>{e(problem)}</li>" for problem in snapshot.credentials_problems), "</ul>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _sync_section(sync: dict[str, object] | None, now: datetime) -> str:
    if sync is None:
        return '<p class="muted">This server does not sync (serve --no-sync): the store is filled by other means.</p>'
    items = [("runs", sync.get("runs")), ("successes", sync.get("successes")), ("failures", sync.get("failures")),
             ("running now", "yes" if sync.get("running") else "no"),
             ("failed or overdue in a row", sync.get("consecutive_failures"))]
    cells = "".join(f"<th>{e(name)}</th><td>{e(value)}</td>" for name, value in items)
    times = []
    for name, key in (("last success", "last_success"), ("last failure", "last_failure"), ("next run", "next_run")):
        value = sync.get(key)
        times.append(f"<th>{e(name)}</th><td>{_ago(parse_time(value), now)}</td>")
    error = sync.get("last_error")
    tail = f'<p>Last sync error: <span class="msg">{e(error)}</span></p>' if error else ""
    return (f"<h2>Sync</h2><table><tr>{cells}</tr></table><table><tr>{''.join(times)}</tr></table>{tail}")


def _attempts(history: Sequence[Attempt], now: datetime) -> str:
    if not history:
        return ""
    rows = "".join(f"<tr><td>{_ago(a.at, now)}</td><td>{_badge(a.result)}</td><td class=\"msg\">{e(a.message)}</td>"
                   f"</tr>" for a in history)
    return (f"<details><summary>last {len(history)} attempt{'s' if len(history) > 1 else ''}</summary>"
            f"<table><tr><th>when</th><th>result</th><th>message</th></tr>{rows}</table></details>")


def _last(row: AssetStatus, history: Sequence[Attempt], now: datetime) -> str:
    message = f'<div class="msg">{e(row.last_message)}</div>' if row.last_message else ""
    return f"{_badge(row.last_result)} {_ago(row.last_attempt, now)}{message}{_attempts(history, now)}"


def _digest(row: AssetStatus) -> str:
    if row.digest is None:
        return "—"
    short = row.digest.split(":", 1)[-1][:12]
    return f'<code title="{e(row.digest)}">{e(short)}</code>'


def _asset_table(rows: Sequence[AssetStatus], histories: dict[str, tuple[Attempt, ...]], now: datetime) -> str:
    if not rows:
        return "<p>No asset is configured.</p>"
    head = ("<tr><th>asset</th><th>reference</th><th>state</th><th>digest</th><th>size</th><th>UpdatedAt</th>"
            "<th>NextUpdate</th><th>last attempt</th></tr>")
    body = []
    for row in rows:
        error = f'<div class="msg">{e(row.error)}</div>' if row.error else ""
        body.append(f'<tr id="asset-{e(row.reference)}"><td>{e(row.asset)}</td><td><code>{e(row.reference)}</code>'
                    f'</td><td>{_badge(row.state)}{error}</td><td>{_digest(row)}</td>'
                    f'<td class="size">{_size(row.size)}</td>'
                    f"<td>{_ago(row.updated_at, now)}</td><td>{_ago(row.next_update, now)}</td>"
                    f"<td>{_last(row, histories.get(row.reference, ()), now)}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _short(digest: object) -> str:
    text = str(digest or "")
    if not text:
        return "—"
    return f'<code title="{e(text)}">{e(text.split(":", 1)[-1][:12])}</code>'


def _pin_cell(pin: dict[str, Any], now: datetime) -> str:
    why = f'<div class="msg">{e(pin.get("reason"))}</div>' if pin.get("reason") else ""
    return (f'{_badge("pinned")} to {_short(pin.get("digest"))} by {e(pin.get("by") or "—")} '
            f'{_ago(parse_time(pin.get("at")), now)}{why}')


def _held_cell(row: AssetStatus, now: datetime) -> str:
    candidate = row.candidate or {}
    reports = candidate.get("reports") or {}
    sources = "".join(f"<li><code>{e(source)}</code>: {_short(digest) if digest else 'nothing'}</li>"
                      for source, digest in reports.items())
    return (f'<span class="state held">held ({e(row.held)})</span> candidate {_short(candidate.get("digest"))} '
            f'from <code>{e(candidate.get("source") or "—")}</code>, since '
            f'{_ago(parse_time(candidate.get("first_seen")), now)}'
            f'<div class="msg">{e(candidate.get("detail"))}</div>' + (f"<ul>{sources}</ul>" if sources else ""))


def _provenance_cell(provenance: dict[str, Any] | None, now: datetime) -> str:
    if not provenance:
        return '<span class="muted">not published by this mirror</span>'
    decisions = "".join(f"<li>{e(d)}</li>" for d in provenance.get("decisions") or [])
    return (f'from <code>{e(provenance.get("source") or "—")}</code>, first seen '
            f'{_ago(parse_time(provenance.get("first_seen")), now)}, published '
            f'{_ago(parse_time(provenance.get("published_at")), now)}'
            + (f"<details><summary>checks passed</summary><ul>{decisions}</ul></details>" if decisions else ""))


def _trust_table(rows: Sequence[AssetStatus], now: datetime) -> str:
    """Per asset: its pin, its held candidate and the provenance of the served version."""
    if not rows:
        return "<p>No asset is configured.</p>"
    head = "<tr><th>reference</th><th>pin</th><th>held candidate</th><th>served version came</th></tr>"
    body = []
    for row in rows:
        pin = _pin_cell(row.pinned, now) if row.pinned else '<span class="muted">not pinned</span>'
        held = _held_cell(row, now) if row.held else '<span class="muted">nothing held</span>'
        body.append(f'<tr id="trust-{e(row.reference)}"><td><code>{e(row.reference)}</code></td><td>{pin}</td>'
                    f"<td>{held}</td><td>{_provenance_cell(row.provenance, now)}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _vex_table(rows: Sequence[AssetStatus], histories: dict[str, tuple[Attempt, ...]], url: str,
               now: datetime) -> str:
    head = ("<tr><th>repository</th><th>URL</th><th>state</th><th>size</th><th>updated</th><th>next check due</th>"
            "<th>source</th><th>last attempt</th></tr>")
    body = []
    for row in rows:
        name = row.reference.removeprefix("vex/")
        body.append(f'<tr id="vex-{e(name)}"><td>{e(name)}</td><td><code>{e(url)}/vex/{e(name)}</code></td>'
                    f'<td>{_badge(row.state)}</td><td class="size">{_size(row.size)}</td>'
                    f"<td>{_ago(row.updated_at, now)}</td>"
                    f'<td>{_ago(row.next_update, now)}</td><td class="msg">{e(row.source or "—")}</td>'
                    f"<td>{_last(row, histories.get(row.reference, ()), now)}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _census_table(clients: Sequence[dict[str, Any]]) -> str:
    if not clients:
        return "<p>No scanner has asked this mirror for anything yet.</p>"
    head = ("<tr><th>client</th><th>first seen</th><th>last seen</th><th>requests</th><th>outcomes</th>"
            "<th>pulled</th><th>could not answer</th></tr>")
    body = []
    for client in clients:
        name = client.get("client")
        label = "other (not a known Trivy)" if name == "other" else f"Trivy {name}"
        outcomes = ", ".join(f"{e(k)}: {e(v)}" for k, v in (client.get("outcomes") or {}).items())
        pulled = "<br>".join(f"<code>{e(p.get('resource'))}</code>" for p in client.get("pulled") or [])
        problems = "<br>".join(f"<code>{e(p.get('resource'))}</code> {e(p.get('outcome'))} "
                               f"&times;{e(p.get('count'))}" + (f" ({e(p['detail'])})" if p.get("detail") else "")
                               for p in client.get("problems") or [])
        body.append(f"<tr><td>{e(label)}</td><td>{e(client.get('first_seen'))}</td>"
                    f"<td>{e(client.get('last_seen'))}</td><td>{e(client.get('requests'))}</td><td>{outcomes}</td>"
                    f"<td>{pulled or '—'}</td><td>{problems or '—'}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _client_config(url: str, vex_served: Sequence[str], settings: ServerSettings) -> str:
    """``trivy-config``'s output for this URL (offline: the VEX repositories this server serves, no credentials)."""
    command = f"trivy-mirror trivy-config --mirror {url} --out DIR"
    if settings.auth_enabled:
        command += " --username USER"
    try:
        config = ClientConfig(parse_mirror(url), vex_repositories=tuple(n for n in vex_served if n != "default"),
                              vex_base=url)
    except MirrorError as err:
        return f"<p>trivy-config cannot describe this URL: {e(err)} (start serve with --public-url).</p>"
    auth_note = ("<p>This mirror needs credentials: run the command above with yours (or <code>--token</code>); "
                 "they go into trivy.yaml and repository.yaml, which the files below leave out.</p>"
                 if settings.auth_enabled else "")
    return "".join([
        f"<p>Write these files with <code>{e(command)}</code>; other tools: <code>--format</code> "
        f"{e(INTEGRATION_FORMATS)} (see the README).</p>", auth_note,
        "<h3>trivy.yaml</h3>", f"<pre>{e(trivy_yaml(config))}</pre>",
        "<h3>repository.yaml</h3><p>Install it as <code>~/.trivy/vex/repository.yaml</code>.</p>",
        f"<pre>{e(repository_yaml(config))}</pre>",
        "<h3>Or as flags</h3>", f"<pre>trivy image {e(flag_line(config).strip())} IMAGE</pre>",
    ])
