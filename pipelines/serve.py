"""`rewards serve`: run the offer API (serving.service:OfferService) with BentoML on a host and port.

``start_server`` / ``wait_ready`` / ``stop_server`` let the demo, the tests and the benchmark run the
real server as a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

SERVICE = "serving.service:OfferService"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ServerStartError(RuntimeError):
    """The offer API did not become ready."""


def server_command(host: str, port: int) -> list[str]:
    """The command line that serves the offer API."""
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
            "--working-dir", str(PROJECT_ROOT), "--do-not-track"]


def start_server(host: str = "127.0.0.1", port: int = 3000, env: dict | None = None, log_path: Path | None = None):
    """Start the offer API as a subprocess (its own process group); returns the Popen.

    ``env`` overrides (on top of this process's environment), e.g. REWARDS_DATA_DIR,
    MLFLOW_TRACKING_URI, REWARDS_API_KEYS. Output goes to ``log_path`` when given.
    """
    from pipelines import config

    # The server runs from the project folder: pin relative data locations to the caller's view.
    pinned = {"REWARDS_DATA_DIR": str(config.data_dir())}
    full_env = {**os.environ, **pinned, "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed when the process ends
    try:
        return subprocess.Popen(
            server_command(host, port), env=full_env, cwd=PROJECT_ROOT, start_new_session=True,
            stdout=out, stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out is not None:
            out.close()  # the child holds its own descriptor


def wait_ready(url: str, timeout: float = 120.0, process: subprocess.Popen | None = None,
               log_path: Path | None = None) -> float:
    """Poll ``{url}/readyz`` until it answers 200; seconds waited. ServerStartError on exit or timeout."""
    import httpx

    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise ServerStartError(
                f"the offer API exited with code {process.returncode} before it was ready{_tail(log_path)}"
            )
        try:
            resp = httpx.get(f"{url.rstrip('/')}/readyz", timeout=2.0)
            if resp.status_code == 200:
                return time.monotonic() - started
            last = f"/readyz answered {resp.status_code}: {resp.text[:200]}"
        except httpx.HTTPError as err:
            last = f"{type(err).__name__}"
        time.sleep(0.25)
    raise ServerStartError(f"the offer API at {url} was not ready after {timeout:.0f} s ({last}){_tail(log_path)}")


def _tail(log_path: Path | None, lines: int = 15) -> str:
    if not log_path or not Path(log_path).exists():
        return ""
    text = Path(log_path).read_text(errors="replace").splitlines()[-lines:]
    return "; server log tail:\n" + "\n".join(text)


def stop_server(process: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """Stop the server and its workers (SIGTERM to its process group, SIGKILL after ``timeout``)."""
    if process.poll() is not None:
        return process.returncode
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return process.poll()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return process.wait(timeout=5)


def example_curl(port: int, customer_id: str, timestamp: str, api_key: str | None = None, host: str = "127.0.0.1") -> str:
    """A curl command that asks the running API for offers."""
    import json

    body = json.dumps({"customer_id": customer_id, "k": 3,
                       "context": {"timestamp": timestamp, "channel": "app", "store_id": "S001"}})
    key = f"-H 'X-API-Key: {api_key}' " if api_key else ""
    return (f"curl -s -X POST http://{host}:{port}/recommend -H 'Content-Type: application/json' "
            f"{key}-d '{body}'")


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 for all)."),
    port: int = typer.Option(3000, "--port", help="Port to listen on."),
    api_keys: str = typer.Option(
        None, "--api-keys", help="Comma-separated API keys for header X-API-Key (default: $REWARDS_API_KEYS). Without keys every request is refused."
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Switch API-key auth off (local experiments only): every request is accepted."
    ),
    profiles: Path = typer.Option(None, "--profiles", help="Profile snapshot Parquet (default: data/profiles/profiles.parquet)."),
    data: Path = typer.Option(None, "--data", help="Folder of validated tables (default: data/validated)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Server worker processes (after a reload the others follow within seconds)."),
) -> None:
    """Serve the offer API (POST /recommend, /recommend_batch, /churn_risk, /admin/reload; GET /healthz, /readyz)."""
    env: dict[str, str] = {"REWARDS_SERVE_WORKERS": str(workers)}
    if api_keys is not None:
        env["REWARDS_API_KEYS"] = api_keys
    if no_auth:
        env["REWARDS_AUTH_DISABLED"] = "1"
    if profiles is not None:
        env["REWARDS_PROFILES_PATH"] = str(Path(profiles).resolve())
    if data is not None:
        env["REWARDS_VALIDATED_DIR"] = str(Path(data).resolve())
    from pipelines import config

    # Resolve relative defaults here: the server runs from the project folder.
    env.setdefault("REWARDS_DATA_DIR", str(config.data_dir()))
    env.setdefault("MLFLOW_TRACKING_URI", config.tracking_uri())
    typer.echo(f"offer API on http://{host}:{port} (data {env['REWARDS_DATA_DIR']}, MLflow {env['MLFLOW_TRACKING_URI']})")
    proc = start_server(host, port, env=env)

    def _stop(signum, _frame):  # the server has its own process group: take it down with us
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = stop_server(proc) or 0
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        typer.secho(f"error: the offer API exited with code {code}", fg="red", err=True)
        raise typer.Exit(code if code and code > 0 else 1)
