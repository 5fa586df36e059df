"""Split chapter sections into retrieval chunks that keep their provenance.

llama-index's SentenceSplitter does the sentence-aware splitting, counted in the embedding
model's own word pieces so a chunk never exceeds what the embedder reads (256 for MiniLM).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

from llama_index.core.node_parser import SentenceSplitter

from ragtune.ingest.document import Block, Chapter


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    chapter_key: str
    chapter_title: str
    section_path: list[str]
    pages: list[int]
    text: str
    whole_section: bool = False  # the chunk is its section's entire text, and the section has no subsections

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_block(block: Block) -> str:
    """A block as chunks and the PT corpus show it: a list item with its label."""
    return f"{block.label}. {block.text}" if block.label else block.text


@dataclass
class ChunkSettings:
    chunk_tokens: int = 192  # MiniLM tokens per chunk: a few sentences, one fact pattern each
    overlap_tokens: int = 32


def chunk_chapter(chapter: Chapter, doc_id: str, tokenizer: Callable[[str], list], settings: ChunkSettings | None = None) -> list[Chunk]:
    """Chunks for every section of one chapter; pages come from the blocks each chunk overlaps."""
    settings = settings or ChunkSettings()
    splitter = SentenceSplitter(chunk_size=settings.chunk_tokens, chunk_overlap=settings.overlap_tokens, tokenizer=tokenizer)
    # doc_id is "<name>-<sha of the file>"; chunk ids use the name, so a passage keeps its id when
    # another chapter of the same book is edited (and with it, the QA grounded on it stays fresh).
    document_name = re.sub(r"-[0-9a-f]{10}$", "", doc_id)
    chunks: list[Chunk] = []
    paths = [tuple(section.section_path) for section in chapter.sections]
    for section in chapter.sections:
        path = tuple(section.section_path)
        has_subsections = any(len(other) > len(path) and other[: len(path)] == path for other in paths)
        spans: list[tuple[int, int, int]] = []
        parts: list[str] = []
        offset = 0
        for block in section.blocks:
            rendered = render_block(block)
            spans.append((offset, offset + len(rendered), block.page))
            parts.append(rendered)
            offset += len(rendered) + 1
        text = "\n".join(parts)
        search_from = 0
        pieces = splitter.split_text(text)
        for piece in pieces:
            start = text.find(piece[:80], search_from)
            if start < 0:
                start = search_from
            end = start + len(piece)
            search_from = start + 1
            pages = sorted({page for s, e, page in spans if s < end and e > start and page > 0}) or section.pages
            digest = hashlib.sha256(f"{document_name}\n{'/'.join(section.section_path)}\n{piece}".encode()).hexdigest()
            chunks.append(
                Chunk(
                    chunk_id=f"{chapter.chapter_key}:{digest[:12]}",
                    doc_id=doc_id,
                    chapter_key=chapter.chapter_key,
                    chapter_title=chapter.title,
                    section_path=list(section.section_path),
                    pages=pages,
                    text=piece,
                    whole_section=len(pieces) == 1 and not has_subsections,
                )
            )
    return chunks
