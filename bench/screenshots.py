"""README screenshots: `churn ui` on the demo store and the service's /docs, in headless Chromium.

    .venv/bin/python bench/screenshots.py [--home DIR] [--out docs/images] [--accounts N]

Builds a demo store in --home unless it already has one (demo data; two trainings whose
data end a quarter apart; a retrain; an evaluate), starts `churn ui` and `churn serve` on
free ports, drives Debian's Chromium (/usr/bin/chromium, `make browser`) over the
DevTools protocol and writes small PNGs into --out:

- mlflow-runs.png          the runs list: named runs, their descriptions and test figures
- mlflow-run-overview.png  a training run's overview with its description
- mlflow-run-plots.png     the same run's artifacts: its lift and gain plot
- mlflow-stage-table.png   its per-stage metrics, the table the UI shows
- service-docs.png         the scoring service's /docs (Swagger UI)

The MLflow UI is a single-page app: each shot waits until the text it shows has rendered.
The page /docs loads Swagger UI from a CDN; this script answers those requests from the
npm registry's `swagger-ui-dist` (fetched with `npm pack`), so it runs without the CDN.
A tool, not a test: run it again when the UI or the runs change.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.chromium import CHROMIUM, FLAGS  # noqa: E402  (one set of browser flags)

SWAGGER_PACKAGE = "swagger-ui-dist@5"
COLUMNS = {  # the runs list shows these beside each run's name, this wide
    "attributes.`Run Name`": 250,
    "runDateAndNestInfo": 140,
    "duration": 80,
    "attributes.`Description`": 440,
    "metrics.`test_roc_auc`": 115,
    "metrics.`test_pr_auc`": 115,
    "metrics.`test_ece`": 115,
    "metrics.`test_lift_top10`": 125,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def churn(*args: str, env: dict[str, str]) -> None:
    print("churn", *args, flush=True)
    subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, check=True, cwd=ROOT)


def build_store(home: Path, accounts: int, env: dict[str, str]) -> None:
    """Demo data, two trainings a quarter apart, a retrain and an evaluate."""
    demo = home / "demo"
    churn("demo-data", "--out", str(demo), "--accounts", str(accounts), env=env)
    churn("train", "--data", str(demo), "--data-end", "2025-09-30", env=env)
    churn("train", "--data", str(demo), "--promote", env=env)
    churn("retrain", "--data", str(demo), env=env)
    churn("evaluate", "--data", str(demo), "--last", "3", env=env)


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        # its own process group: `churn ui` runs `mlflow server`, which runs uvicorn workers
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[:3]} exited with {proc.returncode} before {url} answered"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code < 500:
                return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f}s")


def swagger_files(into: Path) -> Path:
    """swagger-ui-dist from the npm registry, unpacked; its directory."""
    subprocess.run(
        ["npm", "pack", SWAGGER_PACKAGE, "--silent", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
    )
    (archive,) = into.glob("swagger-ui-dist-*.tgz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "package"


class Browser:
    """Headless Chromium over the DevTools protocol: navigate, wait for text, screenshot."""

    def __init__(self, profile: Path) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *(flag for flag in FLAGS if not flag.startswith("--remote-debugging-port")),
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        page = self._page(f"http://127.0.0.1:{port}/json/list")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)
        self.on_event: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.send("Page.enable")

    def _page(self, url: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, StopIteration):
                return next(t for t in httpx.get(url).json() if t["type"] == "page")
            time.sleep(0.3)
        raise TimeoutError("Chromium's DevTools endpoint did not answer")

    def close(self) -> None:
        self.socket.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method; events arriving meanwhile go to their handlers."""
        call = next(self.ids)
        self.socket.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            handler = self.on_event.get(message.get("method", ""))
            if handler is not None:
                handler(message["params"])

    def js(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return result.get("result", {}).get("value")

    def open(self, url: str, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", url="about:blank")
        self.send("Page.navigate", url=url)

    def wait_for(self, texts: tuple[str, ...], timeout: float = 300) -> None:
        """Until every text is on the page, then a moment for layout to settle."""
        probe = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(f"!!document.body && {probe}"):
                time.sleep(2)
                return
            time.sleep(0.5)
        raise TimeoutError(f"{texts} did not render in {timeout:.0f}s")

    def click_text(self, text: str) -> None:
        self.js(
            "[...document.querySelectorAll('button, a, span')]"
            f".find(e => e.innerText && e.innerText.trim() === {json.dumps(text)})?.click()"
        )

    def screenshot(self, path: Path) -> None:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        small = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=128)
        path.parent.mkdir(parents=True, exist_ok=True)
        small.save(path, optimize=True)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)", flush=True)

    def serve_from(self, prefix: str, directory: Path) -> None:
        """Answer requests for ``prefix``... with files of ``directory`` (same names)."""
        self.send("Fetch.enable", patterns=[{"urlPattern": f"{prefix}*"}])

        def answer(event: dict[str, Any]) -> None:
            name = event["request"]["url"].split("?")[0].rsplit("/", 1)[-1]
            path = directory / name
            kind = "text/css" if name.endswith(".css") else "application/javascript"
            if path.is_file():
                body = base64.b64encode(path.read_bytes()).decode()
                headers = [{"name": "Content-Type", "value": kind}]
                params = {"responseCode": 200, "responseHeaders": headers, "body": body}
                self._reply("Fetch.fulfillRequest", event["requestId"], params)
            else:
                self._reply("Fetch.failRequest", event["requestId"], {"errorReason": "Failed"})

        self.on_event["Fetch.requestPaused"] = answer

    def _reply(self, method: str, request_id: str, params: dict[str, Any]) -> None:
        self.socket.send(
            json.dumps(
                {
                    "id": next(self.ids),
                    "method": method,
                    "params": {"requestId": request_id, **params},
                }
            )
        )


def quiet_ui_state(browser: Browser, ui: str, experiment_id: str, expand: list[str]) -> None:
    """The UI's own browser state: assistant panel closed, the runs list's columns chosen."""
    browser.open(f"{ui}/health", 800, 600)
    state = {
        "selectedColumns": [c for c in COLUMNS if c.startswith(("attributes.`D", "metrics."))],
        "columnOrder": list(COLUMNS),
        "columnWidths": COLUMNS,
        "runsExpanded": dict.fromkeys(expand, True),
    }
    key = f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment_id}"]-ReactComponentState'
    browser.js(
        f"localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
        f"localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
        f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(state))});"
    )


def take(home: Path, out: Path, scratch: Path) -> None:
    from mlflow import MlflowClient

    from training.describe import UI_WORKFLOW, runs_page

    env = {**os.environ, "CHURN_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("CHURN_TRACKING_URI", None)
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    trainings = [r for r in runs if r.info.run_name.startswith("train ")]
    latest = trainings[0]
    ui_port, api_port = free_port(), free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    api = f"http://127.0.0.1:{api_port}"
    machine_learning = f"?workflowType={UI_WORKFLOW}"
    with (
        process(
            [sys.executable, "-m", "service.cli", "ui", "--port", str(ui_port)],
            env,
            scratch / "ui.log",
        ) as ui_proc,
        process(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--port",
                str(api_port),
                "--workers",
                "1",
            ],
            env,
            scratch / "serve.log",
        ) as api_proc,
    ):
        wait_http(f"{ui}/health", ui_proc)
        wait_http(f"{api}/health", api_proc)
        browser = Browser(scratch / "profile")
        try:
            quiet_ui_state(
                browser, ui, experiment.experiment_id, [r.info.run_id for r in trainings]
            )
            base = f"{ui}/#/experiments/{experiment.experiment_id}"
            browser.open(runs_page(ui, experiment.experiment_id), 1720, 600)
            browser.wait_for((latest.info.run_name, "test_roc_auc"))
            browser.screenshot(out / "mlflow-runs.png")

            browser.open(f"{base}/runs/{latest.info.run_id}{machine_learning}", 1400, 1060)
            browser.wait_for(("Description", "Registered models"))
            browser.click_text("Show more")
            browser.wait_for(("Test: ROC-AUC",))
            browser.js(
                "[...document.querySelectorAll('*')].find(e => e.innerText === 'Description')"
                "?.scrollIntoView({block: 'start'})"
            )
            browser.screenshot(out / "mlflow-run-overview.png")

            plot = f"{base}/runs/{latest.info.run_id}/artifacts/plots/lift_gain.png"
            browser.open(f"{plot}{machine_learning}", 1400, 760)
            browser.wait_for(("plots/lift_gain.png", "tables"))
            browser.screenshot(out / "mlflow-run-plots.png")

            table = f"{base}/runs/{latest.info.run_id}/artifacts/tables/metrics_by_stage.json"
            browser.open(f"{table}{machine_learning}", 1500, 560)
            browser.wait_for(("View as table", "late"))
            browser.screenshot(out / "mlflow-stage-table.png")

            browser.serve_from(
                "https://cdn.jsdelivr.net/npm/swagger-ui-dist", swagger_files(scratch)
            )
            browser.open(f"{api}/docs", 1400, 1000)
            browser.wait_for(("/v1/score", "/v1/prioritize"))
            browser.screenshot(out / "service-docs.png")
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="A demo store to reuse (default: a new one).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--accounts", type=int, default=5000)
    args = parser.parse_args()
    if shutil.which(CHROMIUM) is None:
        sys.exit(f"{CHROMIUM} is missing: `make browser` installs Debian's Chromium")
    with tempfile.TemporaryDirectory(prefix="churn-screenshots-") as scratch:
        home = args.home or Path(scratch) / "home"
        if not (home / "mlflow.db").exists():
            env = {**os.environ, "CHURN_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
            env.pop("CHURN_TRACKING_URI", None)
            build_store(home, args.accounts, env)
        take(home.resolve(), args.out.resolve(), Path(scratch))


if __name__ == "__main__":
    main()
