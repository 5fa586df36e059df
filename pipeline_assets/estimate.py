"""generation_estimate: the dry run of qa_candidates in the graph. What generating the chapter would
call, read and write at the current settings, counted with the model's tokenizer, priced, and no LLM
call (ragtune.generate.estimate). `ragtune estimate` runs the same function."""


from dataclasses import asdict
from typing import Optional

import dagster as dg
from pydantic import Field

from pipeline_assets.generate import GenerationConfig, chapter_evidence
from pipeline_assets.metadata import table
from pipeline_assets.partitions import chapter_partitions
from ragtune.generate.estimate import ChapterEstimate, Observed, estimate_chapter
from ragtune.generate.evidence import EvidencePlan
from ragtune.generate.qa_generation import GenerationSettings
from ragtune.llm.backends import default_gguf_path
from ragtune.llm.client import LLMCache
from ragtune.llm.local_models import resolve_gguf
from ragtune.llm.tokens import counter_for
from resources.llm import LLMResource
from resources.storage import DataDirResource


class EstimateConfig(GenerationConfig):
    tokenizer: Optional[str] = Field(default=None, description="Hub id or folder of the tokenizer, for an endpoint model tiktoken does not know.")


def estimate_plans(plans: list[EvidencePlan], settings: GenerationSettings, llm: LLMResource, storage: DataDirResource,
                   tokenizer: str | None = None) -> tuple[list[ChapterEstimate], str, str, Observed]:
    """(estimates, what counted the tokens, the model id, what earlier runs observed) for these plans,
    learning keep rates and output lengths from the data folder's status files and cache hits from its cache."""
    backend = llm.backend
    model_path = getattr(backend, "model_path", None)
    model_path = resolve_gguf(model_path) if model_path else None  # a local model's short name counts with its own GGUF
    count, counted_with = counter_for(backend.backend, llm.model_name, model_path, tokenizer, default_gguf_path())
    layout = storage.layout
    statuses = [layout.read_json(path) for path in layout.generation_statuses()]
    client = llm.backend_client(layout.llm_cache_dir)
    observed = Observed.from_statuses(statuses, client.model_id)
    identity = getattr(client, "cache_identity", client.model_id)
    cache = LLMCache(layout.llm_cache_dir)
    estimates = [estimate_chapter(plan, settings, count, observed, cache, identity, llm.price()) for plan in plans]
    return estimates, counted_with, client.model_id, observed


@dg.asset(group_name="generate", partitions_def=chapter_partitions, deps=[chapter_evidence], kinds={"python"})
def generation_estimate(context: dg.AssetExecutionContext, config: EstimateConfig, storage: DataDirResource, llm: LLMResource
                        ) -> dg.MaterializeResult:
    """Dry run of qa_candidates for this chapter with the same settings: the rounds its waves would ask,
    calls (cached ones free), prompt tokens counted with the model's tokenizer, completion tokens from
    what earlier runs observed (else max_tokens), and the cost. No LLM is called, nothing is generated."""
    key = context.partition_key
    source = storage.layout.evidence_plan(key)
    if not source.exists():
        raise dg.Failure(f"{source} is missing; materialize chapter_evidence for partition '{key}' first")
    plan = EvidencePlan.from_dict(storage.layout.read_json(source))
    values = {k: v for k, v in config.model_dump().items() if k != "tokenizer"}
    (estimate,), counted_with, model_id, observed = estimate_plans([plan], GenerationSettings(**values), llm, storage, config.tokenizer)
    out = storage.layout.report(f"estimates/{key}")
    out.parent.mkdir(parents=True, exist_ok=True)
    storage.layout.write_json(out, {**asdict(estimate), "model": model_id, "tokenizer": counted_with})
    return dg.MaterializeResult(metadata={
        "rounds": estimate.rounds, "calls": estimate.calls, "cached_calls": estimate.cached_calls,
        "prompt_tokens": estimate.prompt_tokens, "completion_tokens": estimate.completion_tokens,
        "cost_usd": estimate.cost_usd if estimate.cost_usd is not None else "unpriced", "expected_kept": estimate.expected_kept,
        "completion_basis": estimate.completion_basis, "tokenizer": counted_with, "model": model_id,
        "observed": table([{"rounds": observed.rounds, "calls": observed.calls, "kept": observed.kept}]),
        "path": dg.MetadataValue.path(str(out)),
    })
