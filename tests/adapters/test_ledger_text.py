"""Both ledgers (SQLite, and Table Storage on a real Azurite) take any text on their record paths without raising.

The event parsers refuse lone surrogates (importer/core/events), so none should reach a ledger; this is the defence
behind that: a lone surrogate has no UTF-8 form, and SQLite (and the Table Storage SDK, which puts keys in URLs)
raised UnicodeEncodeError on it, a 500 whose event the sender retried forever. Such text is now stored with its
surrogates escaped, looked up the same way, and read back as it was recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.ledger.tables import TableLedger
from importer.core.outcome import Outcome
from importer.ports.ledger import Ledger
from testbed.azurite import Azurite

pytestmark = pytest.mark.timeout(90)

TEXTS = {
    "lone-high-surrogate": "\ud800",
    "lone-low-surrogate-inside": "team\udfffapp",
    "reversed-pair": "\udc00\ud800",
    "surrogate-and-controls": "\ud83d\x1b[2J\r\n",
}


@pytest.fixture(params=["sqlite", "tables"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        opened: SqliteLedger | TableLedger = SqliteLedger(tmp_path / "ledger.db")
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        opened = TableLedger(connection_string=azurite.connection_string, table_prefix="t" + uuid.uuid4().hex[:16])
    yield opened
    opened.close()


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_record_paths_take_text_without_a_utf8_form(ledger: Ledger, text: str) -> None:
    """Claim, record, look up and release an event whose id, repository, tag and reason hold lone surrogates."""
    event_id = f"{text}-{uuid.uuid4()}"
    outcome = Outcome(event_id=event_id, received_at="2026-11-26T10:00:00.000Z", result="rejected",
                      repository=f"repo{text}", tag=f"tag{text}", digest=f"sha256:{text}", reason=f"why {text}",
                      actor=text, user_agent=text)

    assert (ledger.claim(event_id), ledger.claim(event_id)) == (True, False)
    ledger.record(outcome)
    ledger.release(event_id)

    assert ledger.outcomes(event_id=event_id) == [outcome]
    assert ledger.outcomes(repository=f"repo{text}") == [outcome]
    assert ledger.claim(event_id) is True


def test_escaping_keeps_other_events_apart(ledger: Ledger) -> None:
    """Two different ids with lone surrogates stay two events."""
    first, second = f"\ud800-{uuid.uuid4()}", f"\udc00-{uuid.uuid4()}"
    assert (ledger.claim(first), ledger.claim(second)) == (True, True)
    for event_id in (first, second):
        ledger.record(Outcome(event_id=event_id, received_at="2026-11-26T10:00:00.000Z", result="rejected"))
    assert [o.event_id for o in ledger.outcomes(event_id=first)] == [first]
    assert [o.event_id for o in ledger.outcomes(event_id=second)] == [second]
