"""Curate: the grounded judge, cross-chapter deduplication, thresholds and the leak-free split into
the instruction dataset, and its exports (alpaca, sharegpt, Hugging Face, preference pairs, card).
"""
