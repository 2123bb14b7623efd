"""The CLI's two undocumented test hooks, read at its edge and injected through ``ConnectionOptions``.

``TRIVY_MIRROR_RETRY_BASE`` (seconds) replaces the retry backoff base and the ``Retry-After`` floor, and
``TRIVY_MIRROR_READ_TIMEOUT`` (seconds) the read timeout, so fault-injection suites that drive the CLI as a
subprocess need not sleep for real. The library itself reads no environment: a program passes a
:class:`~trivy_mirror.http.transport.RetryPolicy` and :class:`~trivy_mirror.http.transport.Timeouts`.
"""

from __future__ import annotations

import math
import os

from trivy_mirror.http.transport import RetryPolicy, Timeouts


def _seconds(name: str) -> float | None:
    """A positive number of seconds from the environment; None when unset or not a positive number."""
    try:
        seconds = float(os.environ.get(name, ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def transport_overrides() -> tuple[RetryPolicy | None, Timeouts | None]:
    """(retry, timeouts) from the hooks; None where a hook is unset (the library's defaults apply)."""
    base = _seconds("TRIVY_MIRROR_RETRY_BASE")
    read = _seconds("TRIVY_MIRROR_READ_TIMEOUT")
    return (None if base is None else RetryPolicy(backoff_base=base, retry_after_floor=min(base, 0.5)),
            None if read is None else Timeouts(read=read))
