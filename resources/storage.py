"""Where the pipeline writes: one data folder (./data by default, RAGTUNE_DATA_DIR or config to change)."""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field


class DataDirResource(dg.ConfigurableResource):
    """Everything the pipeline writes lives under data_dir; see README 'What lands where'."""

    data_dir: str = Field(
        default_factory=lambda: os.environ.get("RAGTUNE_DATA_DIR", "data"),
        description="Folder for every output (parsed JSON, index, QA rows, dataset, adapter, reports).",
    )

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def path(self, *parts: str) -> Path:
        """A path under the data folder; its parent folder exists. Parts come from partition keys
        and document ids, so one that would lead out of the data folder ('..', an absolute path)
        is refused before anything is written."""
        root = self.root
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"refusing to write {'/'.join(parts)!r}: it leads out of the data folder {root}; "
                             "partition keys and file names must not contain '..' or absolute paths")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
