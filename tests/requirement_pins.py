"""The `name==version` pins of a requirements file (tests/entry/test_requirements.py, tests/entry/test_install.py)."""

from __future__ import annotations

import re
from pathlib import Path


def normalised(name: str) -> str:
    """A distribution name normalised (PEP 503): `PyYAML` and `pyyaml`, `prometheus_client` and `prometheus-client`
    compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, names normalised (PEP 503); `-r` and other option lines are
    skipped, and any other line that is not pinned with `==` fails the test."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, equals, version = line.partition("==")
        assert equals, f"{path.name}: {line!r} is not pinned with =="
        found[normalised(name)] = version
    return found
