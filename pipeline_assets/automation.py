"""Declarative automation: after a chapter's text changes, only that chapter's partitions regenerate.

Data versions carry the chapters' content hashes, so "changed" means new content, not a new run:
chapter_chunks[ch] regenerates only for chapters whose text changed, and faiss_index only when some
chapter's chunks changed. qa_candidates has no automation condition yet: a condition that holds QA
until the index rebuild finishes cannot see the index request (will_be_requested does not cross
partitions definitions), and QA against a stale index would be wrong; it runs from jobs or the UI.
"""

import dagster as dg

# A dependency whose data version changed (not merely re-materialized) counts as updated.
ON_NEW_CONTENT = dg.AutomationCondition.eager().replace("newly_updated", dg.AutomationCondition.data_version_changed())
