"""The fit judge: a local model (llama.cpp) asked whether each kept pair's answer is the full and exact
answer to its question, the last rule of the filter in qa_candidates (so the quota counts what it keeps)
and qa_filtered. Off unless a model is named here or in $RAGTUNE_FIT_JUDGE; its threshold on p(yes) is
the one bench/qa_fit.py chose on the dev part of the labelled fit set."""

import os
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from ragtune.generate.fit_scores import CachedFitJudge

MIN_FIT_YES = 0.587  # bench/qa_fit.py: the lowest threshold with precision >= 0.8 on dev for qwen2.5-coder-1.5b (BENCHMARKS.md)


class FitJudgeResource(dg.ConfigurableResource):
    model: Optional[str] = Field(default=None, description="A local model's short name or a GGUF path (e.g. qwen2.5-coder-1.5b); "
                                 "default $RAGTUNE_FIT_JUDGE; none: no fit judge.")
    min_fit_yes: float = Field(default=MIN_FIT_YES, description="Keep a pair when the judge's p(yes) is at least this.")

    def chosen(self) -> str:
        return self.model or os.environ.get("RAGTUNE_FIT_JUDGE", "")

    def judge(self, cache_dir: Path) -> Optional[CachedFitJudge]:
        return CachedFitJudge(self.chosen(), cache_dir, self.min_fit_yes) if self.chosen() else None
