"""The Dagster code location loads, validates, and has the graph and partitions the design needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import ROOT


def test_definitions_load_and_validate():
    from pipeline_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "parsed_documents", "chapters", "chapter_chunks", "faiss_index", "chapter_evidence", "qa_candidates", "seed_candidates",
        "qa_filtered", "qa_judged", "review_tasks", "review_decisions", "instruction_dataset", "dataset_exports", "pt_adapter",
        "lora_adapter", "preference_pairs", "dpo_adapter", "judge_scores", "heldout_loss", "medquad_scores", "generation_estimate",
    }
    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_partitioned}
    assert partitioned == {"chapters", "chapter_chunks", "chapter_evidence", "qa_candidates", "seed_candidates", "qa_filtered", "qa_judged", "generation_estimate",
                           "review_tasks", "review_decisions"}
    # The dataset follows the expert decisions; the evaluation compares base, SFT and SFT+DPO.
    assert dg.AssetKey("review_decisions") in graph.get(dg.AssetKey("instruction_dataset")).parent_keys
    assert graph.get(dg.AssetKey("judge_scores")).parent_keys == {dg.AssetKey("lora_adapter"), dg.AssetKey("dpo_adapter")}
    assert graph.get(dg.AssetKey("lora_adapter")).parent_keys == {dg.AssetKey("instruction_dataset"), dg.AssetKey("pt_adapter")}  # PT -> SFT
    assert graph.get(dg.AssetKey("review_tasks")).automation_condition is None  # pushing to reviewers happens when asked
    assert graph.get(dg.AssetKey("generation_estimate")).automation_condition is None  # a dry run happens only when asked
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert set(checks) >= {"no_split_leakage", "near_duplicate_rate", "mean_groundedness", "quota_met_per_chapter", "no_seed_task_in_dataset"}
    assert checks["no_split_leakage"].blocking and checks["no_seed_task_in_dataset"].blocking and not checks["mean_groundedness"].blocking
    assert graph.get(dg.AssetKey("qa_candidates")).partitions_def.name == "chapters"
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("chapter_evidence")).parent_keys}
    assert parents == {"chapters", "faiss_index"}
    assert graph.get(dg.AssetKey("qa_candidates")).parent_keys == {dg.AssetKey("chapter_evidence")}
    assert graph.get(dg.AssetKey("seed_candidates")).parent_keys == {dg.AssetKey("chapter_evidence")}  # after the index rebuild
    assert graph.get(dg.AssetKey("qa_filtered")).parent_keys == {dg.AssetKey("qa_candidates"), dg.AssetKey("seed_candidates")}
    assert {s.name for s in defs.sensors} == {"inbox_sensor", "chapter_fanout_sensor", "automation_sensor", "review_sensor"}


def test_dagster_cli_validates_the_workspace(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_gpu_7b_run_config_validates_against_the_train_and_judge_job(monkeypatch):
    import yaml

    from pipeline_assets.definitions import defs

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    config = yaml.safe_load((ROOT / "docker" / "run_configs" / "train_gpu_7b.yaml").read_text())
    job = defs.resolve_job_def("train_and_judge")
    assert dg.validate_run_config(job, config)
    config["ops"]["lora_adapter"]["config"]["profile"] = "gpu_70b"
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, config)


def test_instance_queues_runs_limits_llm_and_gpu_runs_and_retries(tmp_path):
    import shutil

    from dagster._core.run_coordinator import QueuedRunCoordinator

    from pipeline_assets.definitions import USES_TAG, defs

    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon dequeues by
        limits = {(t["key"], t["value"]): t["limit"] for t in queue.tag_concurrency_limits}
        assert limits == {(USES_TAG, "llm"): 1, (USES_TAG, "gpu"): 1} and queue.max_concurrent_runs == 2
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert defs.resolve_job_def("generate_chapter_qa").tags[USES_TAG] == "llm"
    assert defs.resolve_job_def("train_and_judge").tags[USES_TAG] == "gpu"
    graph = defs.resolve_asset_graph()
    for name, pool in {"qa_candidates": "llm", "qa_judged": "llm", "lora_adapter": "gpu", "judge_scores": "gpu"}.items():
        node = graph.get(dg.AssetKey(name))
        assert node.pools == {pool}, name
    for name in ("qa_candidates", "qa_judged", "judge_scores", "medquad_scores"):
        assert defs.resolve_assets_def(dg.AssetKey(name)).op.retry_policy.max_retries == 2, name


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, "LlamaCppConfig"),
        ({"RAGTUNE_LLM_BACKEND": "llamacpp", "RAGTUNE_LLM_GGUF": "/models/x.gguf"}, "LlamaCppConfig"),
        ({"RAGTUNE_LLM_BACKEND": "openai", "RAGTUNE_LLM_BASE_URL": "http://gpu:8000/v1", "RAGTUNE_LLM_MODEL": "qwen"}, "OpenAIConfig"),
        ({"RAGTUNE_LLM_BACKEND": "openai_batch", "RAGTUNE_LLM_BASE_URL": "https://api.openai.com/v1", "RAGTUNE_LLM_MODEL": "gpt-4o-mini"},
         "OpenAIBatchConfig"),
        ({"RAGTUNE_LLM_BACKEND": "vllm", "RAGTUNE_LLM_MODEL": "mistralai/Mistral-7B-Instruct-v0.2"}, "VLLMConfig"),
    ],
)
def test_each_backend_is_chosen_from_the_environment_with_only_its_own_fields(environ, expected):
    from resources import llm_from_env

    backend = llm_from_env(environ).backend
    assert type(backend).__name__ == expected
    fields = set(type(backend).model_fields)
    if expected == "LlamaCppConfig":
        assert fields == {"backend", "model_path", "n_ctx", "n_threads"} and backend.model_path == environ.get("RAGTUNE_LLM_GGUF")
    elif expected == "VLLMConfig":
        assert "base_url" not in fields and backend.model == environ["RAGTUNE_LLM_MODEL"]
    else:
        assert {"tensor_parallel_size", "n_ctx"}.isdisjoint(fields) and backend.model == environ["RAGTUNE_LLM_MODEL"]
        assert backend.base_url == environ["RAGTUNE_LLM_BASE_URL"]


@pytest.mark.parametrize("value", ["vlm", "VLLM", "llama.cpp", ""])
def test_an_unknown_backend_is_refused_with_the_four_names(value):
    from resources import llm_from_env

    with pytest.raises(ValueError, match="use one of: llamacpp, openai, openai_batch, vllm"):
        llm_from_env({"RAGTUNE_LLM_BACKEND": value})
    with pytest.raises(ValueError, match="needs RAGTUNE_LLM_MODEL"):
        llm_from_env({"RAGTUNE_LLM_BACKEND": "vllm"})


def test_one_table_of_backends_drives_the_config_the_command_line_and_token_counting():
    """Adding a backend is a BACKEND_KINDS entry and its config class: the resource's classes, `--backend`
    and the estimate's token counting all read that table."""
    from pipeline_assets.cli.main import build_parser
    from ragtune.llm.backends import BACKEND_KINDS
    from resources import BACKENDS

    assert list(BACKENDS) == list(BACKEND_KINDS)
    run = next(a for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions if a.dest == "backend")
    assert run.choices == list(BACKEND_KINDS)
    assert {k.name for k in BACKEND_KINDS.values() if k.endpoint} == {"openai", "openai_batch"}


@pytest.mark.parametrize("backend", ["openai", "openai_batch"])
def test_an_endpoint_backend_without_a_base_url_is_refused_not_sent_to_localhost(backend):
    from resources import llm_from_env

    with pytest.raises(ValueError, match=f"RAGTUNE_LLM_BACKEND={backend} needs RAGTUNE_LLM_BASE_URL"):
        llm_from_env({"RAGTUNE_LLM_BACKEND": backend, "RAGTUNE_LLM_MODEL": "gpt-4o-mini"})


def test_asset_kinds_name_the_bound_backend():
    from pipeline_assets.definitions import build_defs
    from resources import LLMResource, OpenAIConfig

    def kinds(defs):
        graph = defs.resolve_asset_graph()
        return {key.to_user_string(): graph.get(key).kinds for key in graph.get_all_asset_keys()}

    embedded = kinds(build_defs())
    assert "llama-cpp" in embedded["qa_candidates"] and "llama-cpp" in embedded["judge_scores"]
    assert "llama-cpp" not in embedded["faiss_index"] and "llama-cpp" not in embedded["generation_estimate"]  # it calls no LLM
    endpoint = LLMResource(backend=OpenAIConfig(base_url="http://gpu:8000/v1", model="qwen"))
    remote = kinds(build_defs({"llm": endpoint, "grounded_judge_llm": endpoint, "judge_llm": endpoint, "reference_llm": endpoint}))
    assert "openai" in remote["qa_candidates"] and "llama-cpp" not in remote["qa_candidates"]
    assert "openai" in remote["qa_judged"] and "pytorch" in remote["judge_scores"] and "openai" in remote["judge_scores"]
