"""The CLI's commands, one module per verb (or per pair of verbs that share their work); `common` holds what they
share. importer/entry/cli.py builds the parser from their `register` functions."""
