"""Chunks keep provenance; the FAISS index over real MiniLM embeddings retrieves the right chapter."""

from __future__ import annotations

from ragtune.index.chunking import chunk_chapter
from ragtune.ingest.document import Block, Chapter, Section
from ragtune.index.vector_index import ChunkIndex


def _chunks(document, embedder):
    return [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]


def test_chunks_carry_provenance_and_fit_the_embedder(handbook_document, embedder):
    chunks = _chunks(handbook_document, embedder)
    assert len(chunks) >= 30
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert chunk.doc_id == handbook_document.doc_id
        assert chunk.chunk_id.startswith(chunk.chapter_key + ":")
        assert chunk.section_path[0] == chunk.chapter_title
        assert chunk.pages and all(2 <= p <= 19 for p in chunk.pages)
        assert len(embedder.tokenize(chunk.text)) <= 200
    criteria = [c for c in chunks if "Sleeping too little or too much." in c.text]
    assert criteria and criteria[0].chapter_key == "depressive-disorders" and 2 in criteria[0].pages


def test_a_chunk_is_its_whole_section_only_when_the_section_fits_it_and_has_no_subsections(embedder):
    short = "Grief that lasts well beyond a year and keeps a person from daily life can be a disorder of its own."
    long = " ".join(f"Sentence {n} of a long section says one more thing about the course of panic disorder." for n in range(40))
    chapter = Chapter("grief", "Grief", [
        Section("What is prolonged grief?", ["Grief", "What is prolonged grief?"], [Block("paragraph", short, 1)]),
        Section("How is panic disorder treated?", ["Grief", "How is panic disorder treated?"], [Block("paragraph", short, 1)]),
        Section("Psychotherapy", ["Grief", "How is panic disorder treated?", "Psychotherapy"], [Block("paragraph", short, 1)]),
        Section("Course", ["Grief", "Course"], [Block("paragraph", long, 2)]),
    ])
    chunks = chunk_chapter(chapter, "grief-0123456789", embedder.tokenize)
    whole = {c.section_path[-1]: c.whole_section for c in chunks}
    assert whole == {"What is prolonged grief?": True, "How is panic disorder treated?": False, "Psychotherapy": True, "Course": False}
    assert len([c for c in chunks if c.section_path[-1] == "Course"]) > 1


def test_faiss_retrieval_across_the_whole_collection(handbook_document, embedder, tmp_path):
    chunks = _chunks(handbook_document, embedder)
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    index.save(tmp_path)
    loaded = ChunkIndex.load(tmp_path)
    assert loaded.index.ntotal == len(chunks) and loaded.index.d == 384
    queries = {
        "lithium maintenance treatment to prevent manic relapse": "bipolar-and-related-disorders",
        "exposure and response prevention for rituals": "obsessive-compulsive-and-related-disorders",
        "refeeding syndrome and low body weight": "feeding-and-eating-disorders",
        "flashbacks and nightmares after a traumatic event": "trauma-and-stressor-related-disorders",
    }
    for query, chapter_key in queries.items():
        hits = loaded.search(embedder.encode([query])[0], 3)
        assert hits[0].chunk.chapter_key == chapter_key, (query, [h.chunk.chunk_id for h in hits])
        assert hits[0].score > hits[-1].score - 1e-6
