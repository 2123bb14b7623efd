"""Prometheus metrics in a registry of the app's own (several apps in one process, as in tests, never clash).

Asset and sync gauges are computed when scraped, from the same sources ``/readyz`` uses, so they are never
stale; request counters are fed by the access logger once each response is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from trivy_mirror.catalog.freshness import AssetStatus
from trivy_mirror.server.scheduler import SchedulerState

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; anything else is ``other``, so clients cannot grow the label set."""


class Metrics:
    def __init__(self, statuses: Callable[[], list[AssetStatus]],
                 scheduler: Callable[[], SchedulerState | None]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("trivy_mirror_http_requests", "HTTP requests answered",
                                 ["route", "method", "status"], registry=self.registry)
        self._bytes = Counter("trivy_mirror_http_response_bytes", "Response body bytes sent", ["route"],
                              registry=self.registry)
        self._duration = Histogram("trivy_mirror_http_request_duration_seconds", "Time to answer a request",
                                   ["route"], registry=self.registry,
                                   buckets=(0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300))
        self.registry.register(_StateCollector(statuses, scheduler))

    def observe(self, route: str, method: str, status: int, sent: int, seconds: float) -> None:
        self._requests.labels(route, method if method in METHODS else "other", str(status)).inc()
        if sent:
            self._bytes.labels(route).inc(sent)
        self._duration.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, statuses: Callable[[], list[AssetStatus]],
                 scheduler: Callable[[], SchedulerState | None]) -> None:
        self._statuses = statuses
        self._scheduler = scheduler

    def collect(self) -> Iterable[Metric]:
        yield from self._assets()
        state = self._scheduler()
        if state is not None:
            yield from _sync_metrics(state)

    def _assets(self) -> Iterable[Metric]:
        updated = GaugeMetricFamily("trivy_mirror_asset_updated_at_seconds",
                                    "UpdatedAt of the served asset (unix time)", labels=["asset"])
        next_update = GaugeMetricFamily("trivy_mirror_asset_next_update_seconds",
                                        "NextUpdate of the served asset (unix time)", labels=["asset"])
        size = GaugeMetricFamily("trivy_mirror_asset_size_bytes", "Size of the served artifact", labels=["asset"])
        ready = GaugeMetricFamily("trivy_mirror_asset_ready", "1 when the asset is present and fresh",
                                  labels=["asset"])
        attempt = GaugeMetricFamily("trivy_mirror_asset_last_attempt_timestamp_seconds",
                                    "When the asset was last synced or imported, successfully or not (unix time)",
                                    labels=["asset", "reference"])
        failed = GaugeMetricFamily("trivy_mirror_asset_last_attempt_failed",
                                   "1 when the last sync of the asset failed or was refused (it may still be fresh)",
                                   labels=["asset", "reference"])
        refused = GaugeMetricFamily("trivy_mirror_asset_last_attempt_refused",
                                    "1 when every candidate of the last sync was refused (the current version is kept)",
                                    labels=["asset", "reference"])
        held = GaugeMetricFamily("trivy_mirror_asset_held",
                                 "1 while a newer version of the asset is held, by reason (pinned, hold, quorum, "
                                 "sanity; 0 with no reason: nothing held); the current version stays served",
                                 labels=["asset", "reference", "reason"])
        pinned = GaugeMetricFamily("trivy_mirror_asset_pinned", "1 while an operator pins the asset's tag",
                                   labels=["asset", "reference"])
        try:
            statuses = self._statuses()
        except Exception:
            log.exception("cannot read the asset statuses for /metrics")
            statuses = []
        for status in statuses:
            if status.updated_at is not None:
                updated.add_metric([status.asset], status.updated_at.timestamp())
            if status.next_update is not None:
                next_update.add_metric([status.asset], status.next_update.timestamp())
            if status.size is not None:
                size.add_metric([status.asset], status.size)
            ready.add_metric([status.asset], 1 if status.ready else 0)
            if status.last_attempt is not None:
                attempt.add_metric([status.asset, status.reference], status.last_attempt.timestamp())
                failed.add_metric([status.asset, status.reference], 1 if status.last_failed else 0)
                refused.add_metric([status.asset, status.reference], 1 if status.last_result == "refused" else 0)
            held.add_metric([status.asset, status.reference, status.held or ""], 1 if status.held else 0)
            if status.pinned is not None:
                pinned.add_metric([status.asset, status.reference], 1)
        return updated, next_update, size, ready, attempt, failed, refused, held, pinned


def _sync_metrics(state: SchedulerState) -> Iterable[Metric]:
    success = GaugeMetricFamily("trivy_mirror_sync_last_success_timestamp_seconds",
                                "When the last successful sync finished (unix time)")
    failure = GaugeMetricFamily("trivy_mirror_sync_last_failure_timestamp_seconds",
                                "When the last failed sync finished (unix time)")
    if state.last_success is not None:
        success.add_metric([], state.last_success.timestamp())
    if state.last_failure is not None:
        failure.add_metric([], state.last_failure.timestamp())
    duration = GaugeMetricFamily("trivy_mirror_sync_duration_seconds", "Duration of the last sync")
    if state.last_duration is not None:
        duration.add_metric([], state.last_duration)
    runs = CounterMetricFamily("trivy_mirror_sync_runs", "Syncs run", labels=["result"])
    runs.add_metric(["success"], state.successes)
    runs.add_metric(["failure"], state.failures)
    consecutive = GaugeMetricFamily("trivy_mirror_sync_consecutive_failures", "Failed syncs in a row")
    consecutive.add_metric([], state.consecutive_failures)
    running = GaugeMetricFamily("trivy_mirror_sync_running", "1 while a sync runs")
    running.add_metric([], 1 if state.running else 0)
    return success, failure, duration, runs, consecutive, running
