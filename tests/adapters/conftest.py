"""Fixtures shared by the adapter tests: Azurite for the Azure Storage adapters (ledger tables, Storage Queues)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.azurite import Azurite, node_binary


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the module, on free loopback ports; skipped only where node itself is missing."""
    if node_binary() is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs npm), so Azurite cannot run")
    with Azurite(tmp_path_factory.mktemp("azurite")) as running:
        yield running
