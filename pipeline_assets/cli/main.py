"""The `ragtune` command (pyproject's entry point), headless over the project's Dagster instance (runs show in `make ui`):

  ragtune run PATH...          the whole graph on these files or folders (--only CHAPTER... to backfill)
  ragtune status               per chapter: fresh or stale, kept/quota, exhausted, failures, tokens, cost
  ragtune estimate PATH...     calls, tokens and cost a run would take; no LLM call
  ragtune preview CHAPTER      generate --n rounds with the current prompts: kept rows and rejections
  ragtune export --format F    the curated dataset in one format
  ragtune parse PATH           one document's parsed JSON

Exit codes: 0 done, 1 a step failed, 2 bad input or usage, 3 stopped at the budget (rerun to continue),
130 stopped by Ctrl-C or SIGTERM (rerun to resume)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from pipeline_assets.cli.display import BAD_INPUT, FAILED, fail
from ragtune.curate.exports import EXPORT_FORMATS
from ragtune.ingest.grobid import GrobidSettings, default_grobid_url
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.sources import parse_document
from ragtune.llm.backends import BACKEND_KINDS


def _llm_flags(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("LLM (default: RAGTUNE_LLM_* variables, the project file's llm:, else the embedded SmolLM2)")
    group.add_argument("--backend", choices=list(BACKEND_KINDS), help="; ".join(f"{k.name}: {k.description}" for k in BACKEND_KINDS.values()))
    group.add_argument("--model", help="model at the endpoint, vLLM model, or for llamacpp a local model (smollm2, qwen2.5-coder-1.5b) or a GGUF path")
    group.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    group.add_argument("--api-key-env", help="the environment variable holding the API key (never the key itself)")
    group.add_argument("--json-mode", choices=["json_schema", "json_object", "none"])
    command.add_argument("--quota", type=int, help="kept pairs wanted per chapter")
    command.add_argument("--rounds", type=int, help="evidence rounds planned per chapter")
    command.add_argument("--seeds", metavar="DIR", help="a folder of seed tasks, <chapter_key>.jsonl each (instruction, input, output): "
                         "new questions are grown from them and answered from the collection (self-instruct)")
    command.add_argument("--set", action="append", default=[], metavar="ASSET.FIELD=VALUE",
                         help="any asset setting, e.g. --set qa_candidates.max_waves=2 (repeatable)")


def _document_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (PDF, DOCX, PPTX, EPUB, HTML, TEI, Markdown, text)")
    command.add_argument("--only", nargs="+", metavar="CHAPTER", help="only these chapters (partition keys)")
    command.add_argument("--categories-from", choices=["outline", "folder", "mapping"], help="chapters from outlines, folders or a mapping")
    command.add_argument("--mapping-file", help="CSV/TSV with file and category columns")
    command.add_argument("--parser", choices=["embedded", "grobid"])
    command.add_argument("--password", help="password of encrypted PDFs")
    command.add_argument("--ocr-languages", help="Tesseract languages for scanned pages, e.g. eng+chi_sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragtune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="on a failure, print the traceback and the steps' full logs")
    commands = parser.add_subparsers(dest="command", required=True)
    parse = commands.add_parser("parse", help="parse a document and print its JSON on stdout")
    parse.add_argument("path")
    parse.add_argument("--password", default=None, help="password of an encrypted PDF")
    parse.add_argument("--parser", choices=["embedded", "grobid"], default="embedded", help="how to parse a PDF")
    parse.add_argument("--grobid-url", default=default_grobid_url(), help="GROBID server (env GROBID_URL)")
    parse.add_argument("--ocr-languages", default=None, help="Tesseract languages for scanned pages, e.g. eng+chi_sim")

    run = commands.add_parser("run", help="materialize the graph on files or folders")
    _document_flags(run)
    _llm_flags(run)
    run.add_argument("--budget-usd", type=float, help="stop generation once this run has paid this much (USD, > 0)")
    run.add_argument("--budget-tokens", type=int, help="stop generation after this many prompt+completion tokens (> 0)")
    run.add_argument("--no-train", action="store_true", help="stop after the dataset and its exports (no LoRA, no judge scores)")
    roles = run.add_argument_group("roles (default: the RAGTUNE_JUDGE_* / RAGTUNE_GROUNDED_JUDGE_* / RAGTUNE_BASE_* variables, "
                                   "the project file's judge: / grounded_judge: / base_model:, else the generator and SmolLM2)")
    roles.add_argument("--judge", help="the evaluation judge (and preference pairs' comparisons): a local model (qwen2.5-coder-1.5b) or a GGUF path")
    roles.add_argument("--grounded-judge", help="qa_judged's grounded judge: a local model or a GGUF path")
    roles.add_argument("--base-model", help="the model LoRA tunes: a transformers folder or hub id, or a GGUF (a path or a local model's short name)")

    estimate = commands.add_parser("estimate", help="calls, tokens and cost a run would take (no LLM call)")
    _document_flags(estimate)
    _llm_flags(estimate)
    estimate.add_argument("--tokenizer", help="hub id or folder of the model's tokenizer (endpoint models tiktoken does not know)")
    estimate.add_argument("--json", action="store_true")

    preview = commands.add_parser("preview", help="generate a few rounds of one chapter and show kept rows and rejections")
    preview.add_argument("chapter")
    preview.add_argument("--n", type=int, default=4, help="rounds to generate")
    _llm_flags(preview)

    status = commands.add_parser("status", help="per chapter: fresh or stale, kept/quota, failures, tokens, cost")
    status.add_argument("--json", action="store_true")

    export = commands.add_parser("export", help="write the curated dataset in one format, as its step wrote it",
                                 epilog="formats: " + "; ".join(f"{f.name}: {f.description}" for f in EXPORT_FORMATS.values()))
    export.add_argument("--format", choices=list(EXPORT_FORMATS), required=True)
    export.add_argument("--split", choices=["train", "validation", "test", "all"], default="train")
    export.add_argument("--out", help="file to write (default: stdout)")
    return parser


def _parse(args: argparse.Namespace) -> int:
    grobid = GrobidSettings(url=args.grobid_url) if args.parser == "grobid" else None
    try:
        document = parse_document(args.path, args.password, grobid, args.ocr_languages)
    except ParseError as error:
        return fail(str(error), BAD_INPUT)
    except Exception as error:  # never a traceback for a bad input file
        if args.debug:
            traceback.print_exc()
        return fail(f"{args.path}: could not parse ({type(error).__name__}: {error})", BAD_INPUT)
    sys.stdout.write(document.to_json() + "\n")
    return 0


def _positive(args: argparse.Namespace) -> None:
    """Counts and budgets that cannot be zero or negative, refused before any work."""
    for flag in ("quota", "rounds", "budget_usd", "budget_tokens", "n"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be greater than 0, not {value:g}")


def _options(args: argparse.Namespace):
    from pipeline_assets.cli.run import LLMOptions, RunOptions, parse_sets

    parse = {name: getattr(args, name) for name in ("categories_from", "mapping_file", "parser", "password", "ocr_languages")
             if getattr(args, name, None) is not None}
    return RunOptions(
        paths=getattr(args, "paths", []) or [], only=getattr(args, "only", None),
        llm=LLMOptions(args.backend, args.model, args.base_url, args.api_key_env, args.json_mode), parse=parse,
        quota=args.quota, rounds=args.rounds, seeds=args.seeds, budget_usd=getattr(args, "budget_usd", None) or 0.0,
        budget_tokens=getattr(args, "budget_tokens", None) or 0,
        train=not getattr(args, "no_train", False), sets=parse_sets(args.set),
        roles={role: value for role in ("judge", "grounded_judge", "base_model") if (value := getattr(args, role, None))},
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # model-loading bars; ragtune's own bars are rich's
    try:
        return _command(args)
    except (ValueError, OSError) as error:  # the settings, project file or environment as given: one line
        if args.debug:
            traceback.print_exc()
        return fail(str(error), BAD_INPUT)
    except Exception as error:  # anything else still ends with its error line, the traceback only with --debug
        if args.debug:
            traceback.print_exc()
        return fail(f"{type(error).__name__}: {error} (rerun with --debug for the traceback)", FAILED)


def _command(args: argparse.Namespace) -> int:
    if args.command == "parse":
        return _parse(args)
    if args.command == "status":
        from pipeline_assets.cli.status import headless_status

        return headless_status(args.json)
    if args.command == "export":
        from pipeline_assets.cli.status import headless_export

        return headless_export(args.format, args.split, args.out)
    _positive(args)
    options = _options(args)
    if args.command == "run":
        from pipeline_assets.cli.run import headless_run

        return headless_run(options, args.debug)
    if args.command == "estimate":
        from pipeline_assets.cli.plan import headless_estimate

        return headless_estimate(options, args.tokenizer, args.json)
    from pipeline_assets.cli.plan import headless_preview

    return headless_preview(options, args.chapter, args.n)


if __name__ == "__main__":
    sys.exit(main())
