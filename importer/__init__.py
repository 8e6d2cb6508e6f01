"""Platform Guard: keep every image in a registry runnable on the platforms its clusters use."""

# The one place the version is written: the build reads it (pyproject.toml, [tool.setuptools.dynamic]) and
# `platform-guard --version` / `python -m importer --version` print it, from a checkout and installed alike.
__version__ = "0.1.0"
