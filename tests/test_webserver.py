"""What `make ui` serves: dagster-webserver on workspace.yaml shows the asset graph and the chapter partitions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import ROOT

CHAPTER_KEYS = ["anxiety-disorders", "depressive-disorders"]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("chapters", CHAPTER_KEYS)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while status != "LOADED":
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not load the code location (last status {status})")
            time.sleep(1)
            try:
                data = _graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }")
                status = data["workspaceOrError"]["locationEntries"][0]["loadStatus"]
            except OSError:
                continue
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_ui_serves_the_asset_graph_and_chapter_partitions(webserver):
    nodes = _graphql(webserver, "{ assetNodes { assetKey { path } isPartitioned partitionKeys dependencyKeys { path } } }")["assetNodes"]
    by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
    assert set(by_name) >= {"parsed_documents", "chapters", "chapter_chunks", "faiss_index", "qa_candidates", "qa_filtered",
                            "instruction_dataset", "lora_adapter", "judge_scores"}
    assert by_name["qa_candidates"]["isPartitioned"] and sorted(by_name["qa_candidates"]["partitionKeys"]) == CHAPTER_KEYS
    assert not by_name["faiss_index"]["isPartitioned"]
    assert {d["path"][-1] for d in by_name["judge_scores"]["dependencyKeys"]} == {"lora_adapter"}
