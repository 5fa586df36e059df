"""Small helpers that turn plain rows into Dagster metadata values."""

from __future__ import annotations

from typing import Any

import dagster as dg

from ragtune.llm.client import CachedLLM
from ragtune.llm.progress import BatchReporter
from ragtune.llm.usage import Price, Usage


def table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """A UI table; the columns are the keys of the first row."""
    if not rows:
        return dg.MetadataValue.table([], dg.TableSchema(columns=[dg.TableColumn("empty", "string")]))
    columns = []
    for key, value in rows[0].items():
        kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else "string"
        columns.append(dg.TableColumn(key, kind))
    records = [
        dg.TableRecord({k: (v if isinstance(v, (int, float)) else str(v)) for k, v in row.items()}) for row in rows
    ]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=columns))



def usage_metadata(usage: Usage, price: Price | None) -> dict[str, Any]:
    """Tokens paid by this step and their cost ("unpriced" without a price for the model)."""
    return {
        "calls_paid": usage.calls,
        "prompt_tokens": usage.prompt_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": round(price.cost(usage), 6) if price else "unpriced",
    }


def usage_from_metadata(metadata: dict[str, Any]) -> tuple[Usage, float | None] | None:
    """What usage_metadata wrote, read back from a materialization's metadata values (None where it
    has none); the cost is None when unpriced."""
    if "prompt_tokens" not in metadata:
        return None
    usage = Usage(*(int(metadata.get(name, 0)) for name in ("calls_paid", "prompt_tokens", "cached_prompt_tokens", "completion_tokens")))
    cost = metadata.get("cost_usd")
    return usage, cost if isinstance(cost, (int, float)) else None


def watched_client(context: dg.AssetExecutionContext, llm, storage, stage: str) -> CachedLLM:
    """The resource's cached client, reporting its batches as they fill to the step's log and to the CLI."""
    client = llm.client(storage.layout.llm_cache_dir)
    partition = context.partition_key if context.has_partition_key else None
    client.on_progress = BatchReporter(stage, partition, context.log.info, client, llm.price())
    return client
