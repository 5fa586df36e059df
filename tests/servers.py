"""Real local servers the tests start: llama.cpp's OpenAI-compatible server and Dagster's webserver
(or `dagster dev`), with the helpers to find a port, wait for them and query them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ragtune.llm.backends import default_gguf_path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen) -> None:
    """Stops a server started in its own session and whatever it spawned. A group already gone (the
    server died at start) is no second error: the one that said why it died is reported."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


def start_llama_server(port: int, *extra: str, api_key: str | None = None) -> subprocess.Popen:
    """llama_cpp.server on the embedded SmolLM2, started and answering /v1/models."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", default_gguf_path(), "--host", "127.0.0.1",
               "--port", str(port), "--model_alias", "smollm2", *extra]
    process = subprocess.Popen([*command, *(["--api_key", api_key] if api_key else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=headers), timeout=2) as r:
                if json.load(r)["data"]:
                    return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("llama_cpp.server did not start")
            time.sleep(0.5)


@contextmanager
def llama_server_url(*extra: str) -> Iterator[str]:
    """A llama.cpp server on a free port for the duration of the block: its OpenAI base URL."""
    port = free_port()
    process = start_llama_server(port, *extra)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=20)


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


@contextmanager
def dagster_ui(home: Path, env: dict[str, str] | None = None, command: str = "dagster-webserver", log: Path | None = None) -> Iterator[int]:
    """`dagster-webserver` (or `dagster dev` with command="dev") on workspace.yaml and DAGSTER_HOME=home,
    yielded once the code location has loaded; stopped on exit."""
    port = free_port()
    program = [str(Path(sys.executable).parent / "dagster"), "dev"] if command == "dev" else [str(Path(sys.executable).parent / command)]
    output = open(log, "w") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [*program, "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=ROOT, env={**os.environ, **(env or {}), "DAGSTER_HOME": str(home)}, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 180, None
        while status != "LOADED":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(program)} did not load the code location (last status {status})")
            time.sleep(1)
            try:
                entries = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }")
                status = entries["workspaceOrError"]["locationEntries"][0]["loadStatus"]
            except OSError:
                continue
        yield port
    finally:
        stop_group(process)
        if log:
            output.close()


# Label Studio pins Django and its own stack, so it lives in its own venv (`make test` builds it:
# .venv-labelstudio); RAGTUNE_LABEL_STUDIO_BIN points elsewhere.
LABEL_STUDIO_BIN = Path(os.environ.get("RAGTUNE_LABEL_STUDIO_BIN", ROOT / ".venv-labelstudio" / "bin" / "label-studio"))


@contextmanager
def label_studio(data_dir: Path, token: str, user: str = "reviewer@example.org") -> Iterator[str]:
    """A real Label Studio server on a fresh data folder with one user whose legacy API token is
    `token`; yields its URL once /health answers UP (~50 s on a first start: its migrations)."""
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_USERNAME": user,
           "LABEL_STUDIO_PASSWORD": "review-only-test-password", "LABEL_STUDIO_USER_TOKEN": token,
           "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    log = open(data_dir / "label-studio.log", "w")
    process = subprocess.Popen([str(LABEL_STUDIO_BIN), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Label Studio did not come up; see {data_dir / 'label-studio.log'}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if json.load(response).get("status") == "UP":
                        break
            except OSError:
                pass
            time.sleep(2)
        yield url
    finally:
        stop_group(process)
        log.close()
