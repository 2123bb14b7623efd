"""The embedded server: the OCI Distribution API over the local store, auth, health, metrics and the sync loop.

``serve()`` runs it all until SIGTERM/SIGINT; ``create_app()`` builds the aiohttp application alone (serve it
with ``runner_options(app)`` so the access log and request metrics are wired in).
"""

from trivy_mirror.orchestrate import SyncOutcome
from trivy_mirror.server.app import create_app, runner_options
from trivy_mirror.server.runner import serve
from trivy_mirror.server.scheduler import SchedulerState, SyncScheduler
from trivy_mirror.server.settings import DEFAULT_ALIASES, ServerSettings

__all__ = [
    "DEFAULT_ALIASES",
    "SchedulerState",
    "ServerSettings",
    "SyncOutcome",
    "SyncScheduler",
    "create_app",
    "runner_options",
    "serve",
]
