"""A real headless Chromium (Debian's ``chromium``), driven over the Chrome DevTools Protocol.

The protocol is JSON over a websocket (aiohttp's client), so no driver package is needed: start the browser
with ``--remote-debugging-port``, open its page target, send commands and collect the events that matter
(console messages, uncaught exceptions, log entries, failed loads).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from support.registry import free_port

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")
"""No network beyond what the page asks for: no updates, sync, first-run pages or QUIC probes."""
WAIT = 30.0
"""Seconds any one command or awaited event may take."""


class Chromium:
    """``with Chromium(tmp_path) as browser: page = await open_page(browser, session, url)``."""

    def __init__(self, workdir: Path, width: int = 1280, height: int = 900) -> None:
        binary = shutil.which("chromium")
        assert binary is not None, "Debian's chromium package is required (apt-get install chromium)"
        self.binary = binary
        self.workdir = workdir
        self.size = (width, height)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "chromium.log"

    def __enter__(self) -> Self:
        profile = self.workdir / "profile"
        profile.mkdir(parents=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={self.port}",
                 "--remote-debugging-address=127.0.0.1", f"--window-size={self.size[0]},{self.size[1]}",
                 "about:blank"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"chromium exited:\n{self.log_path.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as response:
                    targets = json.load(response)
                if any(target["type"] == "page" for target in targets):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"chromium did not open its debugging port:\n{self.log_path.read_text()}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def page_target(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as response:
            targets = json.load(response)
        return str(next(target for target in targets if target["type"] == "page")["webSocketDebuggerUrl"])


class Page:
    """One CDP session on a page target; ``problems`` collects console errors, exceptions and failed loads."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.next_id = 0
        self.problems: list[str] = []
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result, recording the events that arrive meanwhile."""
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.socket.receive_json()
                if message.get("id") == self.next_id:
                    assert "error" not in message, f"{method}: {message['error']}"
                    return dict(message.get("result", {}))
                self._event(message)

    async def wait_for(self, event: str) -> dict[str, Any]:
        for seen in self.events:
            if seen.get("method") == event:
                return seen
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.socket.receive_json()
                self._event(message)
                if message.get("method") == event:
                    return dict(message)

    def _event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            self.problems.append(f"console {params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            self.problems.append(f"log {params['entry']['level']}: {params['entry'].get('text')} "
                                 f"{params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            self.problems.append(f"load failed: {params.get('errorText')}")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode((await self.send("Page.captureScreenshot", format="png"))["data"])


async def open_page(browser: Chromium, session: aiohttp.ClientSession, url: str) -> Page:
    """Navigate the browser's page to ``url`` with every problem watched, and wait until it has loaded."""
    socket = await session.ws_connect(browser.page_target(), max_msg_size=64 << 20)
    page = Page(socket)
    for domain in ("Page", "Runtime", "Log", "Network"):
        await page.send(f"{domain}.enable")
    await page.send("Emulation.setDeviceMetricsOverride", width=browser.size[0], height=browser.size[1],
                    deviceScaleFactor=1, mobile=False)
    navigated = await page.send("Page.navigate", url=url)
    assert "errorText" not in navigated, navigated
    await page.wait_for("Page.loadEventFired")
    return page
