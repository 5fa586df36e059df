"""Generate: evidence plans per chapter, answer-first QA candidates, and the rules and groundedness
gate a candidate must pass to be kept (qa_candidates, qa_filtered).
"""
