"""ragtune: expert documents -> grounded instruction dataset -> LoRA adapter -> judged scores.

This package holds the pure logic (no Dagster imports); pipeline_assets/ wires it into assets.
"""

__version__ = "0.1.0"
