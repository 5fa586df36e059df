"""Ingest: documents in (PDF through pypdf/pdfminer or GROBID TEI, Markdown, text), parsed into
blocks, sections and chapters; collections, the inbox the sensors watch, and run-key locks.
"""
