"""What `make ui` serves: dagster-webserver on workspace.yaml shows the asset graph and the chapter partitions."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from tests.conftest import ROOT
from tests.servers import dagster_ui, graphql

CHAPTER_KEYS = ["anxiety-disorders", "depressive-disorders"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("chapters", CHAPTER_KEYS)
    with dagster_ui(home) as port:
        yield port


def test_ui_serves_the_asset_graph_and_chapter_partitions(webserver):
    nodes = graphql(webserver, "{ assetNodes { assetKey { path } isPartitioned partitionKeys dependencyKeys { path } } }")["assetNodes"]
    by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
    assert set(by_name) >= {"parsed_documents", "chapters", "chapter_chunks", "faiss_index", "qa_candidates", "qa_filtered",
                            "instruction_dataset", "lora_adapter", "dpo_adapter", "judge_scores", "review_decisions"}
    assert by_name["qa_candidates"]["isPartitioned"] and sorted(by_name["qa_candidates"]["partitionKeys"]) == CHAPTER_KEYS
    assert not by_name["faiss_index"]["isPartitioned"]
    assert {d["path"][-1] for d in by_name["judge_scores"]["dependencyKeys"]} == {"lora_adapter", "dpo_adapter"}  # base, SFT, SFT+DPO
    assert by_name["review_decisions"]["isPartitioned"]
