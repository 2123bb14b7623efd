"""The fleet census: which Trivy versions pull what from this mirror, and what the mirror could not answer.

Every Trivy names its version first in its ``User-Agent`` (``trivy/0.67.2``), so the server can tell a fleet
apart: per version, the repositories and tags (and VEX repositories) it asked for and when, and every request
the mirror could not answer as asked (a 404 on a tag it does not hold, a denied request, a VEX archive sent
whole because that Trivy cannot take a 304, a push into a catalog tag that the trust policy held: its 403 is
``held``, with the hold's first words, not ``denied``, which is about credentials). Nothing grows with request
input: at most ``MAX_VERSIONS`` versions (further ones and every other agent fold into ``other``),
``MAX_RESOURCES`` resources and ``MAX_PROBLEMS`` problems per version.

The census lives in memory, is counted into ``/metrics`` and is written to ``STORE/.clients.json`` (atomically,
at most every ``WRITE_EVERY`` seconds and at shutdown) so ``trivy-mirror status`` can show it and a restart
keeps it. A tag of a catalog asset that clients asked for and did not get is what the next sync adds to its
plan (:func:`requested_tags`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from trivy_mirror.catalog.assets import AssetSpec, TagSpec
from trivy_mirror.errors import MirrorError
from trivy_mirror.fsutil import os_errors, write_atomic
from trivy_mirror.server.accesslog import ROUTE_KEY
from trivy_mirror.server.routes import match_v2
from trivy_mirror.store.paths import TMP_DIR
from trivy_mirror.timefmt import iso, parse_time
from trivy_mirror.trivyagent import trivy_version, version_label
from trivy_mirror.vex.serve import NO_304_KEY

log = logging.getLogger(__name__)

STATE_FILE = ".clients.json"
"""In the store root; a leading dot keeps it out of every repository name."""
MAX_VERSIONS = 32
MAX_RESOURCES = 16
MAX_PROBLEMS = 16
MAX_NAME = 128
OTHER = "other"
"""The label of every agent that is not a released Trivy, and of versions past ``MAX_VERSIONS``."""
OUTCOMES = ("ok", "not-found", "denied", "held", "no-304", "error")
WRITE_EVERY = 5.0
CLIENT_ROUTES = frozenset({"ping", "token", "manifests", "blobs", "tags", "vex-list", "vex-manifest", "vex-archive"})
"""Routes a scanner uses; health checks and metric scrapes are not clients."""
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REQUESTABLE_TAG = re.compile(r"[0-9]{1,3}")
MAX_DETAIL = 80
"""Characters of a hold's words kept with a ``held`` problem: enough to name the check."""

HELD_KEY = web.RequestKey("trivy_mirror_push_held", str)
"""Set by the push API on a push the trust policy held (the hold, as its 403 says it): the census counts that 403
as ``held``, not ``denied``."""


def first_words(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (an ellipsis marks the cut)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "\u2026"


def outcome_of(status: int, no_304: bool, held: bool = False) -> str:
    if no_304:
        return "no-304"
    if held and status == 403:
        return "held"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not-found"
    return "ok" if status < 400 else "error"


def resource_of(route: str, path: str) -> str | None:
    """What a request asked for: ``NAME:TAG`` for a manifest by tag, ``vex/NAME`` for a VEX repository."""
    if route == "manifests":
        found = match_v2(path.removeprefix("/v2/"))
        if found is not None and _TAG.fullmatch(found.reference):
            return f"{found.name[:MAX_NAME]}:{found.reference}"
        return None  # by digest: the tag it came from was counted
    if route in ("vex-manifest", "vex-archive"):
        parts = path.split("/")
        return f"vex/{parts[2][:MAX_NAME]}" if len(parts) > 2 else None
    if route == "blobs":
        found = match_v2(path.removeprefix("/v2/"))
        return found.name[:MAX_NAME] if found is not None else None
    return None


@dataclass
class Problem:
    resource: str
    outcome: str
    count: int
    last: datetime
    detail: str | None = None
    """The latest hold's first words, for a ``held`` push."""

    def to_json(self) -> dict[str, Any]:
        found = {"resource": self.resource, "outcome": self.outcome, "count": self.count, "last": iso(self.last)}
        return {**found, "detail": self.detail} if self.detail is not None else found


@dataclass
class ClientRecord:
    """One Trivy version (or ``other``)."""

    client: str
    first_seen: datetime
    last_seen: datetime
    outcomes: dict[str, int] = field(default_factory=dict)
    pulled: dict[str, datetime] = field(default_factory=dict)
    """Resource -> last successful request for it (manifests by tag, VEX repositories)."""
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client, "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
            "requests": self.requests, "outcomes": dict(sorted(self.outcomes.items())),
            "pulled": [{"resource": name, "last": iso(at)} for name, at in sorted(self.pulled.items())],
            "problems": [problem.to_json() for _key, problem in sorted(self.problems.items())],
        }

    @classmethod
    def from_json(cls, obj: Any) -> ClientRecord | None:
        """A record read back from the state file; None when it is not one (the file is ours, but be lenient)."""
        try:
            first, last = parse_time(obj["first_seen"]), parse_time(obj["last_seen"])
            if first is None or last is None or not isinstance(obj["client"], str):
                return None
            record = cls(obj["client"][:MAX_NAME], first, last)
            record.outcomes = {k: int(v) for k, v in obj.get("outcomes", {}).items() if k in OUTCOMES}
            for entry in obj.get("pulled", [])[:MAX_RESOURCES]:
                at = parse_time(entry.get("last"))
                if at is not None:
                    record.pulled[str(entry["resource"])[:MAX_NAME + 130]] = at
            for entry in obj.get("problems", [])[:MAX_PROBLEMS]:
                at = parse_time(entry.get("last"))
                if at is not None and entry.get("outcome") in OUTCOMES:
                    detail = entry.get("detail")
                    problem = Problem(str(entry["resource"])[:MAX_NAME + 130], entry["outcome"], int(entry["count"]),
                                      at, first_words(detail) if isinstance(detail, str) else None)
                    record.problems[(problem.outcome, problem.resource)] = problem
            return record
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


class Census:
    """The in-memory census of one server; feed it with :meth:`middleware`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.clients: dict[str, ClientRecord] = {}
        self.dirty = False
        self._save_failing = False
        if path is not None:
            for record in read_records(path):
                if len(self.clients) < MAX_VERSIONS + 1:
                    self.clients[record.client] = record

    def label(self, user_agent: str | None) -> str:
        version = trivy_version(user_agent)
        if version is None:
            return OTHER
        label = version_label(version)
        if label in self.clients or len([c for c in self.clients if c != OTHER]) < MAX_VERSIONS:
            return label
        return OTHER

    def record(self, user_agent: str | None, route: str, path: str, status: int, no_304: bool = False,
               now: datetime | None = None, held: str | None = None) -> str:
        """Count one answered request; returns its outcome. ``held``: the hold of a push the trust policy held."""
        now = now or datetime.now(UTC)
        client = self.label(user_agent)
        # A 401 on the ping is the auth challenge every client starts with, not a refusal.
        outcome = "ok" if route == "ping" and status == 401 else outcome_of(status, no_304, held is not None)
        detail = first_words(held) if outcome == "held" and held is not None else None
        record = self.clients.get(client)
        if record is None:
            record = self.clients[client] = ClientRecord(client, now, now)
        record.last_seen = now
        record.outcomes[outcome] = record.outcomes.get(outcome, 0) + 1
        self.dirty = True
        resource = resource_of(route, path)
        if resource is None:
            return outcome
        if outcome == "ok":
            if route != "blobs" and (resource in record.pulled or len(record.pulled) < MAX_RESOURCES):
                record.pulled[resource] = now
            return outcome
        key = (outcome, resource)
        problem = record.problems.get(key)
        if problem is not None:
            problem.count += 1
            problem.last = now
            problem.detail = detail or problem.detail
        elif len(record.problems) < MAX_PROBLEMS:
            record.problems[key] = Problem(resource, outcome, 1, now, detail)
            self._warn_once(client, outcome, resource, detail)
        return outcome

    @staticmethod
    def _warn_once(client: str, outcome: str, resource: str, detail: str | None = None) -> None:
        who = f"Trivy {client}" if client != OTHER else "a client that is not a known Trivy"
        if outcome == "not-found":
            log.warning("%s asked for %s, which this mirror does not hold (404); a catalog asset's tag is added to "
                        "the next sync when the sources publish it", who, resource)
        elif outcome == "no-304":
            log.info("%s cannot take a 304 on a VEX archive (trivy#10958): it gets the whole %s archive", who,
                     resource)
        elif outcome == "denied":
            log.warning("%s was denied %s (401/403): check its credentials", who, resource)
        elif outcome == "held":
            log.info("%s pushed %s and the trust policy held it (403, not a credentials problem): %s", who,
                     resource, detail)

    def to_json(self) -> dict[str, Any]:
        clients = sorted(self.clients.values(), key=lambda r: (r.client == OTHER, _sort_key(r.client)))
        return {"clients": [record.to_json() for record in clients]}

    def save(self) -> None:
        """Write the state file (atomically); clears ``dirty`` first so requests meanwhile mark it again."""
        if self.path is None:
            return
        self.dirty = False
        data = json.dumps({"updated_at": iso(datetime.now(UTC)), **self.to_json()}, indent=1).encode() + b"\n"
        with os_errors(f"write {self.path}"):
            write_atomic(self.path.parent / TMP_DIR, self.path, data)

    async def save_now(self) -> None:
        """:meth:`save` off the event loop; a failure (a read-only store) is logged once, then retried quietly."""
        try:
            await asyncio.to_thread(self.save)
        except MirrorError as err:
            self.dirty = True
            log.log(logging.DEBUG if self._save_failing else logging.WARNING,
                    "cannot record the client census: %s", err)
            self._save_failing = True
        else:
            self._save_failing = False

    async def keep_saved(self, every: float = WRITE_EVERY) -> None:
        """Write the state file whenever it changed, at most every ``every`` seconds (a background task)."""
        while True:
            await asyncio.sleep(every)
            if self.dirty:
                await self.save_now()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as err:
            self._observe(request, err.status)
            raise
        self._observe(request, response.status)
        return response

    def _observe(self, request: web.Request, status: int) -> None:
        route = request.get(ROUTE_KEY, "other")
        if route in CLIENT_ROUTES:
            self.record(request.headers.get("User-Agent"), route, request.path, status,
                        request.get(NO_304_KEY, False), held=request.get(HELD_KEY))

    def collector(self) -> Collector:
        return _CensusCollector(self)


class _CensusCollector(Collector):
    def __init__(self, census: Census) -> None:
        self._census = census

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("trivy_mirror_client_requests",
                                     "Requests from scanners by client version (other: not a known Trivy) and outcome",
                                     labels=["client", "outcome"])
        for record in list(self._census.clients.values()):
            for outcome, count in sorted(record.outcomes.items()):
                family.add_metric([record.client, outcome], count)
        yield family


def _sort_key(client: str) -> tuple[int, ...]:
    return tuple(int(part) for part in client.split(".")) if client != OTHER else ()


def read_records(path: Path) -> list[ClientRecord]:
    """The census a server wrote; empty when there is none or it cannot be read."""
    try:
        document = json.loads(path.read_bytes())
        entries = document["clients"] if isinstance(document, dict) else []
    except (OSError, ValueError, KeyError):
        return []
    records = [ClientRecord.from_json(entry) for entry in entries if isinstance(entry, dict)]
    return [record for record in records if record is not None]


def census_path(store_root: Path) -> Path:
    return store_root / STATE_FILE


def requested_tags(store_root: Path, repositories: Mapping[str, str]) -> dict[str, list[str]]:
    """Tags clients asked for and got a 404 on, per asset: ``repositories`` maps a repository's last name
    component (``trivy-checks``) to the asset whose tags follow the client (the checks bundle). Only short
    numeric tags, the major versions Trivy asks for, qualify."""
    wanted: dict[str, set[str]] = {}
    for record in read_records(census_path(store_root)):
        for (outcome, resource), _problem in record.problems.items():
            name, _, tag = resource.rpartition(":")
            asset = repositories.get(name.rsplit("/", 1)[-1])
            if outcome == "not-found" and asset is not None and _REQUESTABLE_TAG.fullmatch(tag):
                wanted.setdefault(asset, set()).add(tag)
    return {asset: sorted(tags, key=int) for asset, tags in wanted.items()}



MAX_EXTRA_TAGS = 4
"""Tags clients asked for that a sync adds to one asset, at most (the census caps what it keeps anyway)."""


def plan_requested_tags(specs: Sequence[AssetSpec], store_root: Path) -> list[AssetSpec]:
    """``specs`` plus, as optional tags, the tags clients asked this store's server for and got a 404 on.

    Only for an asset whose tag is the client's choice of major version (the checks bundle: ``:1`` up to Trivy
    0.68, ``:2`` from 0.69); a DB's tag is its schema, fixed by the catalog. An optional tag that no source
    publishes is "absent", never a failure.
    """
    following = {spec.repository: spec.name for spec in specs if not spec.has_metadata}
    wanted = requested_tags(store_root, following)
    planned = []
    for spec in specs:
        have = {tag.tag for tag in spec.tags}
        extra = [tag for tag in wanted.get(spec.name, []) if tag not in have][:MAX_EXTRA_TAGS]
        if extra:
            log.info("%s: adding %s to the sync: clients asked for them", spec.name,
                     ", ".join(f"{spec.repository}:{tag}" for tag in extra))
            spec = replace(spec, tags=(*spec.tags, *(TagSpec(tag, required=False) for tag in extra)))
        planned.append(spec)
    return planned
