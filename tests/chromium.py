"""Headless Chromium driven over the DevTools protocol: open a page, record what it did.

Used by the HTML tests (console errors, network requests, images, a screenshot) and by
hand for the README screenshots:

    python tests/chromium.py REPORT.html OUT.png [--width 1280] [--height 2000] [--element ID]

Debian's ``chromium`` (``make browser``) is started with a fresh profile, no sandbox, no
GPU and no background networking; only the process this module starts is ever stopped.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-error:")
IMAGES = """Array.from(document.images).map(i => ({
  src: i.currentSrc.slice(0, 40), complete: i.complete, width: i.naturalWidth }))"""


def executable() -> str | None:
    return shutil.which(CHROMIUM)


@dataclass
class Visit:
    """What one page load did."""

    url: str
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    images: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def network_requests(self) -> list[str]:
        """Requests that would leave the machine (anything not file:, data:, ...)."""
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class Chromium:
    """``with Chromium() as browser: visit = browser.visit(url)``."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        binary = executable()
        if binary is None:
            raise RuntimeError("chromium is not installed (make browser)")
        self.profile = Path(tempfile.mkdtemp(prefix="churn-chromium-"))
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        self._stop()

    def _stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """One DevTools command; events arriving meanwhile are kept in ``events``."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=self.timeout))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(
            e.get("method") == method and e.get("sessionId") == session for e in self.events
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {self.timeout:.0f}s")
            self.events.append(json.loads(self.socket.recv(timeout=remaining)))

    def visit(
        self,
        url: str,
        width: int = 1280,
        height: int = 900,
        full_page: bool = False,
        element: str | None = None,
    ) -> Visit:
        """Load ``url`` in a new tab; its console errors, requests, images and a screenshot
        (the viewport, the whole page, or one element by id)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics, session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session)
        images = self.send(
            "Runtime.evaluate", {"expression": IMAGES, "returnByValue": True}, session
        )["result"]["value"]
        shot: dict[str, Any] = {"format": "png"}
        if full_page or element:
            box = self.send(
                "Runtime.evaluate",
                {"expression": _box(element), "returnByValue": True},
                session,
            )["result"]["value"]
            shot.update({"clip": {**box, "scale": 1}, "captureBeyondViewport": True})
        screenshot = base64.b64decode(self.send("Page.captureScreenshot", shot, session)["data"])
        visit = Visit(url=url, images=images, screenshot=screenshot)
        for event in (e for e in self.events if e.get("sessionId") == session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                visit.errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                visit.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.errors.append(params["entry"].get("text", ""))
        self.send("Target.closeTarget", {"targetId": target})
        return visit


def _box(element: str | None) -> str:
    if element is None:
        return (
            "({x: 0, y: 0, width: document.documentElement.scrollWidth, "
            "height: document.documentElement.scrollHeight})"
        )
    return (
        f"(() => {{ const r = document.getElementById({json.dumps(element)})"
        ".getBoundingClientRect(); return {x: r.left + window.scrollX, "
        "y: r.top + window.scrollY, width: r.width, height: r.height}; })()"
    )


def is_blank(png: bytes) -> bool:
    """True when a screenshot is one flat colour (nothing rendered)."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as picture:
        spread = ImageStat.Stat(picture.convert("L")).stddev[0]
    return spread < 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--element", help="id of the element to capture")
    parser.add_argument("--full", action="store_true", help="capture the whole page")
    args = parser.parse_args()
    with Chromium() as browser:
        visit = browser.visit(
            args.page.resolve().as_uri(), args.width, args.height, args.full, args.element
        )
    args.out.write_bytes(visit.screenshot)
    print(f"wrote {args.out}; errors {visit.errors}; network {visit.network_requests}")


if __name__ == "__main__":
    main()
