"""Evaluate: base and tuned answers graded by a judge on the frozen eval set and MedQuAD, pairwise
comparison in both orders, and the statistics with their intervals.
"""
