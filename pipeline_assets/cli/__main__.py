"""`python -m pipeline_assets.cli`: the `ragtune` command without its entry point."""

import sys

from pipeline_assets.cli.main import main

if __name__ == "__main__":  # importing the module (a walk over every package) must not run the command
    sys.exit(main())
