"""Declarative automation: after a chapter's text changes, only what its new content reaches regenerates.

Data versions are content hashes, so "changed" means new content, not a new run:
chapters[ch] -> chapter_chunks[ch] -> faiss_index (whole collection) -> chapter_evidence[every ch]
-> qa_candidates[ch] only where that chapter's retrieved evidence changed -> qa_filtered[ch] -> qa_judged[ch].
Unlike Dagster's eager(), a condition here never fires because a dependency "will be requested":
that would chain an asset into its dependency's run before the new data version is known.
"""

import dagster as dg

AC = dg.AutomationCondition


def on_new_content(only_from: str | None = None, when_missing: bool = True, optional: tuple[str, ...] = ()) -> dg.AutomationCondition:
    """True once a dependency (or only the named one) has a new data version, and, with
    when_missing, for a partition that was just added, as soon as its dependencies exist
    (dependencies named in `optional` may be missing)."""
    changed = AC.any_deps_match(AC.data_version_changed())
    missing = AC.any_deps_match(AC.missing() & ~AC.will_be_requested())
    if optional:
        missing = missing.ignore(dg.AssetSelection.assets(*optional))
    if only_from:
        changed = changed.allow(dg.AssetSelection.assets(only_from))
    trigger = AC.newly_missing() | changed if when_missing else changed
    return (
        AC.in_latest_time_window()
        & trigger.since_last_handled()
        & ~missing
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    ).with_label(f"on new content{f' in {only_from}' if only_from else ''}")


ON_NEW_CONTENT = on_new_content()
# The dataset also follows the expert decisions, which exist only for chapters someone reviewed.
ON_NEW_CONTENT_OR_REVIEW = on_new_content(optional=("review_decisions",))
# Evidence is re-planned (cheap: embeddings and a FAISS search) only after the index content changed:
# reacting to its own chapter, or to a new partition, would plan against the index before its rebuild.
ON_NEW_INDEX = on_new_content(only_from="faiss_index", when_missing=False)
