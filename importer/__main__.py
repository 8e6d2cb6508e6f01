"""`python -m importer`: the command line (see importer/cli.py)."""

import sys

from importer.entry.cli import main

sys.exit(main())
