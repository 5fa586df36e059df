"""The GROBID server that turns PDFs into TEI (used when parsed_documents runs with parser='grobid').
Its fields are GrobidSettings' own (url from GROBID_URL by default)."""

import dagster as dg

from ragtune.ingest.grobid import GrobidSettings
from resources.settings import from_settings, to_settings

_GrobidFields = from_settings("_GrobidFields", GrobidSettings, "GrobidSettings as resource fields.", base=dg.ConfigurableResource)


class GrobidResource(_GrobidFields):
    def settings(self) -> GrobidSettings:
        return to_settings(GrobidSettings, self)
