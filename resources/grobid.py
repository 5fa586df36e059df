"""The GROBID server that turns PDFs into TEI (used when parsed_documents runs with parser='grobid')."""

import dagster as dg
from pydantic import Field

from ragtune.ingest.grobid import GrobidSettings


class GrobidResource(dg.ConfigurableResource):
    url: str = Field(default=GrobidSettings.url, description="GROBID server, e.g. http://localhost:8070 (docker/).")
    timeout_s: int = GrobidSettings.timeout_s
    busy_wait_s: float = GrobidSettings.busy_wait_s
    max_busy_retries: int = GrobidSettings.max_busy_retries
    tei_coordinates: bool = GrobidSettings.tei_coordinates

    def settings(self) -> GrobidSettings:
        return GrobidSettings(self.url, self.timeout_s, self.busy_wait_s, self.max_busy_retries, self.tei_coordinates)
