"""The Dagster code location: assets, stage jobs and resources with embedded defaults."""

from __future__ import annotations

import typing

import dagster as dg

from pipeline_assets.curate import DATASET_CHECKS, dataset_exports, instruction_dataset, qa_judged
from pipeline_assets.estimate import generation_estimate
from pipeline_assets.evaluate import heldout_loss, judge_scores, medquad_scores
from pipeline_assets.executors import executor_from_env
from pipeline_assets.generate import chapter_evidence, qa_candidates, qa_filtered, seed_candidates
from pipeline_assets.index import chapter_chunks, faiss_index
from pipeline_assets.ingest import chapters, every_document_parsed, parsed_documents
from pipeline_assets.partitions import chapter_partitions
from pipeline_assets.review import REVIEW_JOBS, review_decisions, review_tasks
from pipeline_assets.sensors import project_sensors
from pipeline_assets.train import TRAINING_CHECKS, dpo_adapter, lora_adapter, preference_pairs, pt_adapter
from ragtune import project
from resources import DataDirResource, DedupJudgeResource, EmbedderResource, FitJudgeResource, GrobidResource, LabelStudioResource, LLMResource
from resources.base_model import base_model_from_env
from resources.llm import llm_from_env, role_resources

ASSETS = [
    parsed_documents,
    chapters,
    chapter_chunks,
    faiss_index,
    chapter_evidence,
    qa_candidates,
    seed_candidates,
    generation_estimate,
    qa_filtered,
    qa_judged,
    review_tasks,
    review_decisions,
    instruction_dataset,
    dataset_exports,
    pt_adapter,
    lora_adapter,
    preference_pairs,
    dpo_adapter,
    judge_scores,
    heldout_loss,
    medquad_scores,
]



def asset_settings() -> dict[str, type[dg.Config]]:
    """The run config class of every asset that takes settings, by asset name: what `--set asset.field`
    and the project file's `assets:` may name."""
    found = {}
    for asset in ASSETS:
        config = typing.get_type_hints(asset.op.compute_fn.decorated_fn).get("config")
        if isinstance(config, type) and issubclass(config, dg.Config):
            found[asset.op.name] = config
    return found


# The graph in the order a full run needs: partitioned stages run once per chapter key. Jobs that
# saturate the LLM endpoint or the GPU are tagged so dagster.yaml's queued run coordinator runs one
# such run at a time (tag_concurrency_limits).
USES_TAG = "ragtune/uses"
# On Kubernetes (docker/k8s) the run pod of a GPU job asks for a GPU; elsewhere the tag is inert.
GPU_POD = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}
STAGE_JOBS = [
    dg.define_asset_job("ingest_documents", selection=[parsed_documents]),
    dg.define_asset_job("prepare_chapter", selection=[chapters, chapter_chunks], partitions_def=chapter_partitions),
    dg.define_asset_job("build_index", selection=[faiss_index]),
    dg.define_asset_job(
        "generate_chapter_qa", selection=[chapter_evidence, qa_candidates, seed_candidates, qa_filtered, qa_judged], partitions_def=chapter_partitions,
        tags={USES_TAG: "llm"},
    ),
    dg.define_asset_job(
        "train_and_judge",
        selection=[instruction_dataset, dataset_exports, pt_adapter, lora_adapter, preference_pairs, dpo_adapter, judge_scores, heldout_loss, medquad_scores],
        tags={USES_TAG: "gpu", "dagster-k8s/config": GPU_POD},
    ),
]
PARTITIONED_JOBS = {"prepare_chapter", "generate_chapter_qa"}


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Embedded defaults; RAGTUNE_LLM_BACKEND picks the generator's backend (resources/llm.py, llm_from_env).
    The grounded judge (grounded_judge_llm, qa_judged), the evaluation judge (judge_llm) and the
    reference model (reference_llm) are the generator unless RAGTUNE_GROUNDED_JUDGE_*, RAGTUNE_JUDGE_*,
    RAGTUNE_REFERENCE_* or the project file name their own (role_resources); the model LoRA tunes comes
    from RAGTUNE_BASE_MODEL / RAGTUNE_BASE_GGUF or the project file's base_model:."""
    environ, prices = project.llm_environ(), project.prices()
    llm = llm_from_env(environ, prices)
    return {
        "storage": DataDirResource(),
        "embedder": EmbedderResource(),
        "llm": llm,
        **role_resources(environ, llm, prices),
        "fit_judge": FitJudgeResource(),
        "dedup_judge": DedupJudgeResource(),
        "base_model": base_model_from_env(environ),
        "grobid": GrobidResource(),
        "label_studio": LabelStudioResource(),
    }


def with_backend_kinds(assets: list[dg.AssetsDefinition], resources: dict[str, dg.ConfigurableResource]) -> list[dg.AssetsDefinition]:
    """Each asset that calls an LLM shows the kind of the backend bound to it (llama-cpp, openai, vllm)."""
    mapped = []
    for asset in assets:
        if asset is generation_estimate:  # it reads the LLM resource for the model's name, price and tokenizer, and calls nothing
            mapped.append(asset)
            continue
        kinds = {resources[key].kind for key in sorted(asset.required_resource_keys) if isinstance(resources.get(key), LLMResource)}
        mapped.append(asset.map_asset_specs(lambda spec, kinds=kinds: spec.replace_attributes(kinds={*spec.kinds, *kinds})) if kinds else asset)
    return mapped


def build_defs(resources: dict[str, dg.ConfigurableResource] | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources (a temp data dir, a cached base model).
    RAGTUNE_EXECUTOR picks where steps run (pipeline_assets/executors.py)."""
    bound = {**default_resources(), **(resources or {})}
    return dg.Definitions(
        assets=with_backend_kinds(ASSETS, bound),
        asset_checks=[every_document_parsed, *DATASET_CHECKS, *TRAINING_CHECKS],
        jobs=STAGE_JOBS + REVIEW_JOBS,  # review runs on request (UI, CLI) and from review_sensor, not in a full run
        sensors=project_sensors(),
        resources=bound,
        executor=executor_from_env(),
    )


defs = build_defs()
