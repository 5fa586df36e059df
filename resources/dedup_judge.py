"""The dedup judge: a local model (llama.cpp) asked whether two rows repeat each other, the verifier of
every pair instruction_dataset's dedup stages propose (ragtune.curate.dedup). Off unless a model is named
here or in $RAGTUNE_DEDUP_JUDGE; its threshold on p(yes) is the one bench/dedup.py chose on the dev split
of the labelled dedup set."""

import os
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from ragtune.curate.dedup_judge import DedupJudge

MIN_DEDUP_YES = 0.6767  # bench/dedup.py: the lowest threshold with precision >= 0.95 on dev for qwen2.5-coder-1.5b with the ask check (BENCHMARKS.md "Dedup against labels")


class DedupJudgeResource(dg.ConfigurableResource):
    model: Optional[str] = Field(default=None, description="A local model's short name or a GGUF path (e.g. qwen2.5-coder-1.5b); "
                                 "default $RAGTUNE_DEDUP_JUDGE; none: the dedup stages decide alone.")
    min_dedup_yes: float = Field(default=MIN_DEDUP_YES, description="Two rows repeat each other when the judge's p(yes) is at least this.")

    def chosen(self) -> str:
        return self.model or os.environ.get("RAGTUNE_DEDUP_JUDGE", "")

    def judge(self, cache_dir: Path) -> Optional[DedupJudge]:
        return DedupJudge(self.chosen(), cache_dir, self.min_dedup_yes) if self.chosen() else None
