"""Print a seeded random sample of kept rows with their evidence, for a person to read and judge
(would a clinician train on it: does the answer answer the question, is it true to its evidence).
The verdicts are a person's, written into BENCHMARKS.md by hand; this script only draws the sample,
so anyone can draw the same rows again.

Usage: .venv/bin/python bench/read_rows.py ROWS.jsonl [ROWS.jsonl ...] [--n 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.jsonl import read_jsonl  # noqa: E402


def shown(row: dict) -> str:
    """One row as a reader needs it: task, question (or the dialogue's turns), answer, cited evidence."""
    lines = [f"[{row.get('qa_id', '')}] {row.get('chapter_key', '')} · {row.get('task', '')} · {row.get('language', '')}"]
    if row.get("turns"):
        lines += [f"  {t['role']}: {t['content']}" for t in row["turns"]]
    else:
        lines += [f"  Q: {row['question']}", f"  A: {row['answer']}"]
    for e in row.get("evidence") or []:
        lines.append(f"  evidence ({' > '.join(e.get('section_path') or [])}): {e.get('text', '')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = list({row["qa_id"]: row for path in args.rows for row in reversed(read_jsonl(Path(path)))}.values())[::-1]  # a row kept by two seeds is read once
    sample = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    print(f"{len(sample)} of {len(rows)} distinct kept rows (seed {args.seed})\n")
    print("\n\n".join(f"{n}. {shown(row)}" for n, row in enumerate(sample, start=1)))


if __name__ == "__main__":
    main()
