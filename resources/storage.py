"""Where the pipeline writes: one data folder (./data by default, RAGTUNE_DATA_DIR or config to change)."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from ragtune.layout import DataLayout


class DataDirResource(dg.ConfigurableResource):
    """Everything the pipeline writes lives under data_dir; see README 'What lands where'."""

    data_dir: str = Field(
        default_factory=lambda: os.environ.get("RAGTUNE_DATA_DIR", "data"),
        description="Folder for every output (parsed JSON, index, QA rows, dataset, adapter, reports).",
    )

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def layout(self) -> DataLayout:
        """Every artifact's path under the data folder (ragtune/layout.py)."""
        return DataLayout(self.root)
