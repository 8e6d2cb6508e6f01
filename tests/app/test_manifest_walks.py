"""Walks over manifest graphs stay linear: each distinct manifest read and parsed once, every descriptor counted
against one budget, nesting bounded.

The hostile shape (issue 12, item 5): four nested indexes, each listing the next N times, the last listing one image
N times. It is 6 manifests and blobs (a few KiB to a few hundred KiB) but N^4 paths from the top to the image: a walk
that follows every reference does N^4 work (N=20 took 30 s of CPU, N=30 passed 120 s and 450 MB). Served by a fake
registry that counts requests (tests/app/content_registry.py) and stored in a real distribution registry, it must be
inspected (the event path, `check`, the sweep, chart images: importer.app.inspection) and copied (re-import, `copy`:
importer.app.copying) in well under a few seconds with exactly the requests its distinct content needs. A graph with
more descriptors than the budget (importer.core.manifests.MAX_WALK_DESCRIPTORS), however it is spread, fails
permanently with a message naming the manifest, before the children past the budget are read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import CopyError, copy_image
from importer.app.inspection import inspect_manifest
from importer.app.pipeline import Pipeline
from importer.app.registries import RegistryDirectory
from importer.app.settings import Settings
from importer.core.decide import decide
from importer.core.events import PushEvent
from importer.core.manifests import MAX_INDEX_DEPTH, MAX_WALK_DESCRIPTORS, ManifestError
from importer.core.media_types import OCI_INDEX, OCI_MANIFEST
from importer.core.policy import parse_policy
from testbed.registry import LocalRegistry
from tests.app.content_registry import ContentRegistry

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")

QUICK = 5.0  # seconds: generous for what now takes milliseconds, and took minutes before
POLICY = parse_policy("version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: alert\n", source="test.yaml")
RULE = POLICY.rule_for("team/app")


def within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`'s result, or a failure when it does not end within `seconds` (left running in a daemon thread)."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(("value", work()))
        except BaseException as error:  # handed back to the test below
            result.append(("error", error))

    thread = threading.Thread(target=run, name="walk-under-test", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"did not finish within {seconds} s")
    kind, value = result[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def fan_out(registry: ContentRegistry, width: int, *, levels: int = 4) -> dict[str, Any]:
    """`levels` nested indexes, each listing the next `width` times; the innermost lists one image `width` times."""
    level = registry.add_image("linux/amd64", seed="the-only-image")
    for _ in range(levels):
        level = registry.add_index([level] * width)
    registry.tags[("team/app", "1")] = level["digest"]
    return level


@pytest.fixture
def content() -> Iterator[ContentRegistry]:
    with ContentRegistry() as registry:
        yield registry


# -- the fan-out, from a fake registry ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [30, 60, 200])
def test_inspecting_a_nested_fan_out_reads_each_manifest_once(content: ContentRegistry, width: int) -> None:
    """4 indexes + 1 image + its config: 6 requests and a compliant verdict, whatever N, in well under 5 s."""
    top = fan_out(content, width)
    client = OciRegistry(content.host)
    facts = within(QUICK, lambda: inspect_manifest(client, "team/app", top["digest"], RULE))
    assert content.count() == 6, content.requests
    assert [str(offer.platform) for offer in facts.offers] == ["linux/amd64"]
    assert decide(facts, RULE).verdict == "compliant"


@pytest.mark.parametrize("width", [30, 200])
def test_copying_a_nested_fan_out_reads_each_manifest_once(
    content: ContentRegistry, tmp_path: Path, width: int
) -> None:
    """A whole copy reads the 5 manifests and the config once each and writes each distinct manifest once, into a
    real distribution registry; the copy has the source's digest."""
    top = fan_out(content, width)
    with LocalRegistry(tmp_path / "target") as target_registry, OciRegistry(target_registry.host) as target:
        result = within(QUICK * 2, lambda: copy_image(OciRegistry(content.host), "team/app", "1", target,
                                                      "mirror/app", "1"))
        assert result.digest == top["digest"]
        assert target.head_manifest("mirror/app", "1").digest == top["digest"]  # type: ignore[union-attr]
    assert content.count("manifests") == 5  # the top by its tag, then the 4 distinct manifests below it by digest
    assert content.count("blobs") == 1  # the config, streamed once
    assert result.stats.manifests_written == 5


def test_a_pushed_fan_out_is_judged_in_bounded_time_through_the_pipeline(
    content: ContentRegistry, tmp_path: Path
) -> None:
    """The event path end to end: one `compliant` outcome in well under 5 s, 6 requests."""
    top = fan_out(content, 60)
    settings = Settings(registries=(content.host,), policy=POLICY, ledger_path=tmp_path / "ledger.db")
    ledger = SqliteLedger(settings.ledger_path)
    try:
        pipeline = Pipeline(policy=POLICY, ledger=ledger,
                            registries=RegistryDirectory(settings, factory=lambda host: OciRegistry(host)))
        event = PushEvent(event_id="e-fan", schema="distribution", action="push", origin=content.host,
                          repository="team/app", tag="1", digest=top["digest"], media_type=OCI_INDEX, size=None,
                          artifact="image", actor="ci", user_agent="test", occurred_at=None)
        outcome = within(QUICK, lambda: pipeline.handle(event))
    finally:
        ledger.close()
    assert outcome is not None and outcome.result == "compliant", outcome
    assert content.count() == 6


# -- the fan-out, stored in a real distribution registry ----------------------------------------------------------


def test_a_nested_fan_out_stored_in_a_real_registry_is_inspected_and_copied_quickly(tmp_path: Path) -> None:
    """Distribution stores the fan-out (N=30, pushed by digest, innermost first); inspecting it and copying it to
    another repository of the same registry each take well under a few seconds and a handful of requests."""
    with ContentRegistry() as shapes:  # builds the documents; nothing is served from it here
        top = fan_out(shapes, 30)
        with LocalRegistry(tmp_path / "registry") as real, OciRegistry(real.host) as client:
            for digest, blob in shapes.blobs.items():
                client.upload_blob("team/app", digest, [blob], size=len(blob))
            for digest, (raw, media_type) in shapes.manifests.items():  # insertion order: innermost first
                client.put_manifest("team/app", digest, raw, media_type)
            client.put_manifest("team/app", "1", *shapes.manifests[top["digest"]])
            reader = OciRegistry(real.host)
            facts = within(QUICK, lambda: inspect_manifest(reader, "team/app", "1", RULE))
            assert decide(facts, RULE).verdict == "compliant"
            assert reader.requests_made <= 6
            copier = OciRegistry(real.host)
            result = within(QUICK * 2, lambda: copy_image(copier, "team/app", "1", copier, "mirror/app", "1"))
            assert result.digest == top["digest"] and result.stats.manifests_written == 5
            assert copier.requests_made <= 30  # reads, blob checks and mounts, five manifest writes


# -- one budget per walk -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Oversized:
    build: Callable[[ContentRegistry], dict[str, Any]]
    most_requests: int  # what the walk may read before it stops


def _wide(registry: ContentRegistry) -> dict[str, Any]:
    """One index with more distinct image children than the budget."""
    children = [registry.add_manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "n": n, "layers": [],
                                       "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1}},
                                      OCI_MANIFEST, platform="linux/amd64")
                for n in range(MAX_WALK_DESCRIPTORS + 1)]
    return registry.add_index(children, tag=("team/app", "1"))


def _spread(registry: ContentRegistry) -> dict[str, Any]:
    """70 distinct small indexes, each listing one shared image 70 times: no index is large, and the image is read
    once, but together their entries pass the budget."""
    image = registry.add_image("linux/arm64")
    inner = [registry.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image] * 70,
                                    "annotations": {"group": str(group)}}, OCI_INDEX)
             for group in range(70)]
    return registry.add_index(inner, tag=("team/app", "1"))


OVERSIZED = {
    "one-wide-index": Oversized(_wide, 1),
    "many-small-indexes": Oversized(_spread, 1 + 70 + 1),
}


@pytest.mark.parametrize("case", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_inspection_past_the_budget_fails_naming_the_manifest(content: ContentRegistry, case: Oversized) -> None:
    """A permanent ManifestError naming the pushed manifest and the limit, after at most the requests needed to get
    there (no child past the budget is read)."""
    top = case.build(content)
    with pytest.raises(ManifestError) as raised:
        within(QUICK, lambda: inspect_manifest(OciRegistry(content.host), "team/app", top["digest"], RULE))
    message = str(raised.value)
    assert top["digest"] in message and f"{MAX_WALK_DESCRIPTORS} descriptors" in message, message
    assert content.count() <= case.most_requests


@pytest.mark.parametrize("case", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_copying_past_the_budget_fails_naming_the_source(
    content: ContentRegistry, tmp_path: Path, case: Oversized
) -> None:
    """The copy engine counts against the same budget: a CopyError naming the source, and nothing written."""
    top = case.build(content)
    with LocalRegistry(tmp_path / "target") as target_registry, OciRegistry(target_registry.host) as target:
        with pytest.raises(CopyError) as raised:
            within(QUICK * 2, lambda: copy_image(OciRegistry(content.host), "team/app", "1", target, "mirror/app",
                                                 "1"))
        assert target.head_manifest("mirror/app", "1") is None
    message = str(raised.value)
    assert f"{content.host}/team/app:1" in message and top["digest"] in message, message
    assert f"{MAX_WALK_DESCRIPTORS} descriptors" in message, message
    assert content.count("blobs") == 0 and content.count("manifests") <= 1 + case.most_requests


def test_a_shared_index_reached_at_two_depths_still_counts_its_deepest_path(content: ContentRegistry) -> None:
    """Memoising by digest keeps the nesting rule: an index whose subtree is 2 levels deep, listed at level 2 and
    again at level 4, nests 5 levels on its deeper path, which is refused even though it was walked once already."""
    image = content.add_image()
    shared = content.add_index([content.add_index([image])])  # 2 levels of indexes
    middle = content.add_index([content.add_index([shared])])  # `shared` at level 4 of the top
    top = content.add_index([shared, middle], tag=("team/app", "1"))  # ... and at level 2
    with pytest.raises(ManifestError, match=f"nests deeper than {MAX_INDEX_DEPTH} levels"):
        inspect_manifest(OciRegistry(content.host), "team/app", top["digest"], RULE)
    with pytest.raises(CopyError, match=f"nest deeper than {MAX_INDEX_DEPTH} levels"):
        copy_image(OciRegistry(content.host), "team/app", "1", OciRegistry(content.host), "mirror/app", "1")


def test_shared_children_are_inspected_and_verified_once(content: ContentRegistry) -> None:
    """An index listing one image 500 times and a nested index listing it again: one read of the image and its
    config, one offer, and the verdict of a single image."""
    image = content.add_image("linux/amd64")
    top = content.add_index([image] * 500 + [content.add_index([image] * 500)], tag=("team/app", "1"))
    started = time.monotonic()
    facts = inspect_manifest(OciRegistry(content.host), "team/app", top["digest"], RULE)
    assert time.monotonic() - started < QUICK
    assert len(facts.offers) == 1 and content.count() == 4  # top, nested index, image, config
