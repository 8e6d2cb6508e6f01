"""The Storage queue adapter reads messages others can write (Event Grid, the Functions host's poison queue): one
nested past MAX_JSON_DEPTH is a foreign message, dead-lettered or left alone, never a RecursionError (real Azurite)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import pytest

from importer.adapters.queue.storage import StorageQueue
from importer.core.bounded_json import MAX_JSON_DEPTH
from testbed.azurite import Azurite

pytestmark = pytest.mark.timeout(90)

DEPTHS = [MAX_JSON_DEPTH + 1, 976, 5000]


def deep_message(depth: int) -> str:
    """A base64 JSON message, as Event Grid writes them, `depth` levels deep."""
    text = '{"v":1,"key":"k","body":"b","x":' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def queue(azurite: Azurite) -> Iterator[StorageQueue]:
    suffix = uuid.uuid4().hex[:16]  # a queue and a key-lease table no other test uses
    opened = StorageQueue(connection_string=azurite.connection_string, queue_name=f"q-{suffix}",
                          lease_table=f"k{suffix}")
    yield opened
    opened.close()


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_message_on_the_queue_is_dead_lettered(azurite: Azurite, queue: StorageQueue, depth: int) -> None:
    from azure.storage.queue import QueueClient

    queue.put("k", "mine", now=1.0)
    with QueueClient.from_connection_string(azurite.connection_string, queue.queue_name) as client:
        client.send_message(deep_message(depth))
    taken = [queue.take("w1", lease_seconds=30.0, now=time.time()) for _ in range(2)]
    assert [message.body for message in taken if message is not None] == ["mine"]
    assert [letter.key for letter in queue.dead_letters()] == [""]


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_poison_message_is_left_alone(azurite: Azurite, queue: StorageQueue, depth: int) -> None:
    from azure.storage.queue import QueueClient

    queue.put("k", "mine", now=1.0)
    with QueueClient.from_connection_string(azurite.connection_string, queue.poison_name) as client:
        client.send_message(deep_message(depth))
    assert queue.dead_letters() == []
