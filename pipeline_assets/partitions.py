"""Chapter partitions: one key per chapter/category slug, registered by parsed_documents."""

import dagster as dg

CHAPTERS = "chapters"
chapter_partitions = dg.DynamicPartitionsDefinition(name=CHAPTERS)
