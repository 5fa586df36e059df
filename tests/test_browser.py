"""The Dagster UI in a real browser: Playwright drives Debian's Chromium against `dagster dev` on
127.0.0.1 (webserver + daemon, the project's dagster.yaml). The asset graph renders, the chapter
partitions are listed, one partition's materialization is launched by clicking through the UI and
succeeds, and its metadata table shows. Screenshots land in test-artifacts/browser/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import ROOT
from tests.servers import dagster_ui, graphql

pytestmark = pytest.mark.slow
ARTIFACTS = Path(os.environ.get("RAGTUNE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)
KEYS = ["anxiety-disorders", "obsessive-compulsive-and-related-disorders"]


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory, two_chapter_pdf):
    """`dagster dev` on a fresh DAGSTER_HOME whose book is already ingested (the partitions exist)."""
    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    home, data = tmp_path_factory.mktemp("dagster_home"), tmp_path_factory.mktemp("data")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    defs = build_defs({"storage": DataDirResource(data_dir=str(data))})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ingest = defs.resolve_job_def("ingest_documents")
        ingest.execute_in_process(instance=instance, run_config={"ops": {"parsed_documents": {"config": {"paths": [str(two_chapter_pdf)]}}}})
        assert sorted(instance.get_dynamic_partitions("chapters")) == KEYS
    env = {"RAGTUNE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "RAGTUNE_SENSORS": "stopped"}  # the test launches its own runs
    with dagster_ui(home, env, command="dev", log=tmp_path_factory.mktemp("logs") / "dagster-dev.log") as port:
        yield {"port": port, "data": data}


@pytest.fixture(scope="module")
def page(dagster_dev):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it with apt-get)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def _open(page, port: int, path: str) -> None:
    page.goto(f"http://127.0.0.1:{port}{path}", wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")  # the community sign-up dialog on a fresh instance
    try:
        skip.click(timeout=3000)
    except Exception:
        pass


def test_asset_graph_renders(page, dagster_dev):
    _open(page, dagster_dev["port"], "/asset-groups")
    for group in ("ingest", "index", "generate", "curate", "train", "evaluate"):  # the global lineage, one node per stage
        page.get_by_text(group, exact=True).first.wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))
    _open(page, dagster_dev["port"], '/asset-groups~group%3A"generate"')
    for asset in ("chapter_evidence", "qa_candidates", "qa_filtered", "generation_estimate"):
        nodes = page.get_by_text(asset, exact=True)
        nodes.last.wait_for(state="visible")
        assert nodes.count() >= 2, asset  # in the side list and as a node of the drawn graph
    page.screenshot(path=str(ARTIFACTS / "generate_group_graph.png"))


def test_chapter_partitions_are_listed(page, dagster_dev):
    _open(page, dagster_dev["port"], "/assets/chapters?view=partitions")
    page.get_by_text("Missing (2)").wait_for()
    for key in KEYS:
        page.get_by_text(key, exact=True).first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "chapter_partitions.png"))


def test_one_partition_is_materialized_from_the_ui_and_its_metadata_shows(page, dagster_dev):
    port = dagster_dev["port"]
    _open(page, port, "/assets/chapters")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize chapters")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_text("anxiety-disorders", exact=True).first.click()
    page.screenshot(path=str(ARTIFACTS / "launch_dialog.png"))
    dialog.get_by_role("button", name="Launch 1 run").click()

    deadline, status = time.monotonic() + 240, None
    while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(2)
        runs = graphql(port, "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }")["runsOrError"]["results"]
        launched = [r for r in runs if {"key": "dagster/partition", "value": "anxiety-disorders"} in r["tags"]]
        status = launched[0]["status"] if launched else None
    assert status == "SUCCESS", f"the run launched from the UI ended {status}"
    events = graphql(port, f'{{ runOrError(runId: "{launched[0]["runId"]}") {{ ... on Run {{ eventConnection {{ events {{ __typename }} }} }} }} }}')
    kinds = {e["__typename"] for e in events["runOrError"]["eventConnection"]["events"]}
    assert "RunEnqueuedEvent" in kinds and "RunSuccessEvent" in kinds  # through dagster.yaml's queued run coordinator
    assert (dagster_dev["data"] / "chapters" / "anxiety-disorders.json").exists()

    _open(page, port, "/assets/chapters?view=partitions")
    page.get_by_text("Materialized (1)").wait_for()
    page.get_by_text("anxiety-disorders", exact=True).first.click()
    page.get_by_text("content_sha256").first.wait_for(state="visible")  # the materialization's metadata
    page.get_by_text("Diagnostic Criteria for Generalized Anxiety Disorder").first.wait_for(state="attached")  # its sections table
    page.screenshot(path=str(ARTIFACTS / "partition_metadata.png"), full_page=True)
