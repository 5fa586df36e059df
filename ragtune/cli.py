"""The `ragtune` command: `ragtune parse PATH` prints the parsed document as JSON.

PATH is a PDF (embedded parser, or GROBID with --parser grobid), a GROBID .tei.xml, .md or .txt file."""

from __future__ import annotations

import argparse
import sys

from ragtune.ingest.grobid import GrobidSettings, default_grobid_url
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.sources import parse_document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragtune", description="ragtune: documents to a tuned, judged model")
    commands = parser.add_subparsers(dest="command", required=True)
    parse = commands.add_parser("parse", help="parse a document and print its JSON on stdout")
    parse.add_argument("path")
    parse.add_argument("--password", default=None, help="password of an encrypted PDF")
    parse.add_argument("--parser", choices=["embedded", "grobid"], default="embedded", help="how to parse a PDF")
    parse.add_argument(
        "--grobid-url", default=default_grobid_url(), help="GROBID server (env GROBID_URL)"
    )
    parse.add_argument("--ocr-languages", default=None, help="Tesseract languages for scanned pages, e.g. eng+chi_sim")
    args = parser.parse_args(argv)
    if args.command == "parse":
        grobid = GrobidSettings(url=args.grobid_url) if args.parser == "grobid" else None
        try:
            document = parse_document(args.path, args.password, grobid, args.ocr_languages)
        except ParseError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Exception as error:  # never a traceback for a bad input file
            print(f"error: {args.path}: could not parse ({type(error).__name__}: {error})", file=sys.stderr)
            return 1
        sys.stdout.write(document.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
