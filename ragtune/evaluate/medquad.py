"""MedQuAD (Ben Abacha & Demner-Fushman, 2019) questions as outside evaluation: real questions
people ask NIH sites, with the sites' answers as references. Reads the mental-health slice: one
XML <Document> per file with <Focus> and <QAPairs>/<QAPair>/<Question>,<Answer>."""

from __future__ import annotations

import csv
import random
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from ragtune.evaluate.evaluation import EvalQuestion

MAX_REFERENCE_CHARS = 2000  # long NIH answers are cut so the judge prompt fits a small context


def _categories(root: Path) -> dict[str, str]:
    index = root / "mental-health-index.tsv"
    if not index.exists():
        return {}
    with open(index, encoding="utf-8") as handle:
        return {Path(r["file"]).name + "|" + Path(r["file"]).parent.name: r["category"] for r in csv.DictReader(handle, delimiter="\t")}


def load_medquad(root: Path) -> tuple[list[EvalQuestion], list[str]]:
    """(answered questions, problems). A file that does not parse is named in problems and skipped."""
    folder = root / "mental-health"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: point medquad_dir at a MedQuAD copy with a mental-health/ folder")
    categories = _categories(root)
    questions, problems = [], []
    for path in sorted(folder.rglob("*.xml")):
        try:
            document = ET.parse(path).getroot()
        except ET.ParseError as error:
            problems.append(f"{path}: not valid XML ({error}); skipped")
            continue
        focus = (document.findtext("Focus") or "").strip()
        group = categories.get(f"{path.name}|{path.parent.name}") or focus or path.parent.name
        for pair in document.iter("QAPair"):
            question = pair.find("Question")
            answer = " ".join((pair.findtext("Answer") or "").split())
            if question is None or not (question.text or "").strip() or not answer:
                continue
            reference = answer if len(answer) <= MAX_REFERENCE_CHARS else answer[:MAX_REFERENCE_CHARS].rsplit(" ", 1)[0] + " …"
            text = re.sub(r"\s+\?$", "?", " ".join(question.text.split()))
            questions.append(EvalQuestion(question.get("qid") or f"{path.stem}-{pair.get('pid')}", group, text, reference))
    return questions, problems


def sample_questions(questions: list[EvalQuestion], n: int, seed: int) -> list[EvalQuestion]:
    """n questions spread over the groups in turn (each group shuffled by seed); all when n <= 0."""
    if n <= 0 or n >= len(questions):
        return list(questions)
    rng = random.Random(seed)
    groups: dict[str, list[EvalQuestion]] = defaultdict(list)
    for q in questions:
        groups[q.group].append(q)
    queues = [rng.sample(members, len(members)) for _, members in sorted(groups.items())]
    picked: list[EvalQuestion] = []
    while len(picked) < n:
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked
