"""Review: expert decisions on generated pairs (accept, edit, reject) from Label Studio, keyed by the
pair's content id, and what curation does with them; it comes before curate, which applies them.
"""
