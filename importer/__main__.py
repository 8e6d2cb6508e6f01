"""`python -m importer`: the command line (see importer/entry/cli.py)."""

import sys

from importer.entry.cli import main

sys.exit(main())
