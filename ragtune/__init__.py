"""ragtune: expert documents -> grounded instruction dataset -> LoRA adapter -> judged scores.

This package holds the pure logic (no Dagster imports); pipeline_assets/ wires it into assets.
Stage packages in pipeline order: ingest, index, llm, generate, curate, train, evaluate (each may
import only those before it); shared modules below them all: text, jsonl, chat, plots.
"""

__version__ = "0.1.0"
