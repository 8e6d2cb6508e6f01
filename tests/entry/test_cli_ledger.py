"""Every CLI command reads and writes the ledger the settings select, as the Functions app does.

With the Table ledger configured (here by connection string, on a real Azurite), `release` must remember the release
where the function looks — a released image pushed again is then `ignored`, not quarantined again — and `outcomes`
must read what the function recorded. The SQLite file named by PLATFORM_GUARD_LEDGER is never created. The commands run
as an operator runs them (`python -m importer …` in a subprocess); the pipeline is built from the same settings with
importer.entry.composition.pipeline_for, as the Functions runtime builds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from importer.adapters.ledger.tables import TableLedger
from importer.app.settings import load_settings
from importer.core.events import PushEvent
from importer.core.media_types import OCI_MANIFEST
from importer.entry.composition import existing_ledger_for, ledger_for, pipeline_for
from importer.ports.ledger import Ledger
from testbed.azurite import Azurite
from testbed.images import ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
QUARANTINE_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"


def run(settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m importer …` with only these Platform Guard settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env={**environment, **settings},
                          capture_output=True, text=True, timeout=60, check=False)


def push_event(registry: LocalRegistry, digest: str, size: int) -> PushEvent:
    """A tagged push of team/app:1.0, built as the parsers build it."""
    return PushEvent(
        event_id=f"push-{uuid.uuid4()}", schema="distribution", action="push", origin=registry.host,
        repository="team/app", tag="1.0", digest=digest, media_type=OCI_MANIFEST, size=size,
        artifact="image", actor="ci", user_agent="test", occurred_at=None,
    )  # fmt: skip


def test_release_and_outcomes_use_the_table_ledger_the_settings_select(
    azurite: Azurite, registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path
) -> None:
    """Quarantined by a pipeline on the Table ledger, released by `release`: the release is in the Table ledger, the
    next push of that digest is `ignored` as released, and `outcomes` lists both decisions from the Table ledger."""
    sqlite_file = tmp_path / "ledger.db"
    settings_env = {
        "PLATFORM_GUARD_REGISTRIES": registry.host,
        "PLATFORM_GUARD_POLICY": QUARANTINE_POLICY,
        "PLATFORM_GUARD_TABLES_CONNECTION_STRING": azurite.connection_string,
        "PLATFORM_GUARD_LEDGER": str(sqlite_file),  # set, so that a command opening SQLite would show here
    }
    settings = load_settings(settings_env)
    image = builder.image("linux/arm64", seed="table-release")
    digest = push(builder, image, registry.host, "team/app", "1.0")

    pipeline = pipeline_for(settings)
    try:
        assert isinstance(pipeline.ledger, TableLedger)
        first = push_event(registry, digest, image.size)
        quarantined = pipeline.handle(first)
        assert quarantined is not None and quarantined.result == "quarantined", quarantined
        assert quarantined.preserved_as is not None
    finally:
        pipeline.ledger.close()

    released = run(settings_env, "release", quarantined.preserved_as)
    assert released.returncode == 0, released.stderr
    assert f"→ {registry.host}/team/app:1.0" in released.stdout

    tables = TableLedger(connection_string=azurite.connection_string)
    try:
        assert tables.is_released(f"{registry.host}/team/app", digest)
    finally:
        tables.close()
    assert not sqlite_file.exists()

    pipeline = pipeline_for(settings)  # as the function decides the push `release` made
    try:
        second = push_event(registry, digest, image.size)
        again = pipeline.handle(second)
        assert again is not None and again.result == "ignored", again
        assert "released on purpose" in (again.reason or "")
    finally:
        pipeline.ledger.close()

    listed = run(settings_env, "outcomes", "--json", "--repository", "team/app")
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["event_id"], r["result"]) for r in records] == [
        (second.event_id, "ignored"), (first.event_id, "quarantined")]
    table = run(settings_env, "outcomes")
    assert table.returncode == 0 and quarantined.preserved_as in table.stdout
    assert not sqlite_file.exists()


def test_outcomes_without_any_ledger_says_so_and_creates_none(tmp_path: Path) -> None:
    """With SQLite selected and no file yet, `outcomes` says where it looked and writes nothing."""
    sqlite_file = tmp_path / "ledger.db"
    result = run({"PLATFORM_GUARD_LEDGER": str(sqlite_file)}, "outcomes")
    assert result.returncode == 0 and f"no ledger at {sqlite_file}" in result.stderr
    assert not sqlite_file.exists()


def test_existing_ledger_for_makes_the_choice_ledger_for_makes(azurite: Azurite, tmp_path: Path) -> None:
    """Readers get the ledger `ledger_for` picks (Table Storage when configured), and None rather than a new SQLite
    file."""
    sqlite_file = tmp_path / "ledger.db"
    on_tables = load_settings({"PLATFORM_GUARD_TABLES_CONNECTION_STRING": azurite.connection_string,
                               "PLATFORM_GUARD_LEDGER": str(sqlite_file)})
    on_sqlite = load_settings({"PLATFORM_GUARD_LEDGER": str(sqlite_file)})
    assert existing_ledger_for(on_sqlite) is None and not sqlite_file.exists()
    opened: list[Ledger | None] = [existing_ledger_for(on_tables), ledger_for(on_sqlite), existing_ledger_for(on_sqlite)]
    try:
        assert [type(ledger).__name__ for ledger in opened] == ["TableLedger", "SqliteLedger", "SqliteLedger"]
    finally:
        for ledger in opened:
            if ledger is not None:
                ledger.close()
