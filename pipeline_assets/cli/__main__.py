"""`python -m pipeline_assets.cli`: the `ragtune` command without its entry point."""

import sys

from pipeline_assets.cli.main import main

sys.exit(main())
