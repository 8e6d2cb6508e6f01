"""Index fan-out: inspecting nested indexes with shared children costs time linear in what the registry stores.

A real distribution registry (one for the module) holds each drawn tree: a few image manifests at the bottom, and
up to four levels of indexes above them, each listing the level below `width` times (the same digests again and
again: shared children). Stored, that is a handful of small documents; walked naively, it is width**levels
children. `inspect_manifest` through the real OCI client must answer (Facts, or ManifestError when the tree is over
a limit) within the CPU and memory bounds of `tests.property.hostile`: the registry runs in its own process, so
the CPU time measured is the inspection's alone.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.adapters.registry.oci import OciRegistry
from importer.app.inspection import inspect_manifest
from importer.core.decide import Facts
from importer.core.manifests import ManifestError
from importer.core.media_types import (
    ATTESTATION_ANNOTATION,
    ATTESTATION_VALUE,
    IN_TOTO_LAYER,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)
from importer.core.policy import parse_policy
from testbed.images import canonical_json, platform_json, sha256_digest
from testbed.registry import LocalRegistry
from tests.property.hostile import bounded, scaled_examples

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64", "linux/s390x")
POLICY = parse_policy("version: 1\ndefaults:\n  require: [linux/amd64, linux/arm64]\n", source="fan-out.yaml")
_names = itertools.count()


@dataclass(frozen=True, slots=True)
class FanOut:
    """A tree to store: `platforms` images at the bottom, `levels` indexes, each listing the one below `width` times
    (level 1 lists the images, round robin, plus an attestation for the first when `attested`)."""

    levels: int
    width: int
    platforms: tuple[str, ...]
    attested: bool = False


FAN_OUTS = st.builds(
    FanOut,
    levels=st.integers(1, 5),
    width=st.integers(1, 14),
    platforms=st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=3, unique=True).map(tuple),
    attested=st.booleans(),
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with LocalRegistry(Path(tmp_path_factory.mktemp("fan-out-registry"))) as local, OciRegistry(local.host) as client:
        yield client


def _blob(client: OciRegistry, repository: str, content: bytes) -> dict[str, object]:
    digest = sha256_digest(content)
    if client.head_blob(repository, digest) is None:
        client.upload_blob(repository, digest, [content], size=len(content))
    return {"digest": digest, "size": len(content)}


def _manifest(
    client: OciRegistry, repository: str, document: dict[str, object], reference: str | None = None
) -> dict[str, object]:
    raw = canonical_json(document)
    digest = sha256_digest(raw)
    media_type = str(document["mediaType"])
    client.put_manifest(repository, reference or digest, raw, media_type)
    return {"mediaType": media_type, "digest": digest, "size": len(raw)}


def store(client: OciRegistry, repository: str, tree: FanOut) -> None:
    """Push the tree's few distinct documents, bottom up; the top index gets the tag `top`."""
    layer = _blob(client, repository, b"one layer")
    images = []
    for platform in tree.platforms:
        config_json = {**platform_json(platform), "rootfs": {"type": "layers", "diff_ids": []}}
        config = _blob(client, repository, json.dumps(config_json).encode())
        manifest = _manifest(client, repository, {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config}, "layers": [{"mediaType": OCI_LAYER, **layer}],
        })
        images.append({**manifest, "platform": platform_json(platform)})
    children = [images[number % len(images)] for number in range(tree.width)]
    if tree.attested:
        statement = _blob(client, repository, b'{"_type":"https://in-toto.io/Statement/v0.1"}')
        attestation = _manifest(client, repository, {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **_blob(client, repository, b"{}")},
            "layers": [{"mediaType": IN_TOTO_LAYER, **statement}],
        })
        children.append({**attestation, "platform": {"os": "unknown", "architecture": "unknown"},
                         "annotations": {ATTESTATION_ANNOTATION: ATTESTATION_VALUE,
                                         "vnd.docker.reference.digest": str(images[0]["digest"])}})
    for level in range(1, tree.levels + 1):
        top = level == tree.levels
        index = _manifest(client, repository, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
                          "top" if top else None)
        children = [index] * tree.width


@settings(max_examples=scaled_examples(0.5))
@given(tree=FAN_OUTS)
@example(tree=FanOut(levels=4, width=20, platforms=("linux/amd64",)))  # issue 12 item 5: 8.4 s of CPU before the fix
@example(tree=FanOut(levels=1, width=3_000, platforms=PLATFORMS))  # one wide index: under the walk's budget
def test_inspecting_shared_and_nested_children_is_linear(tree: FanOut, registry: OciRegistry) -> None:
    """Facts or ManifestError (a tree over the depth or fan-out limit), within the bounds, whatever the tree."""
    repository = f"fan/out-{next(_names)}"
    store(registry, repository, tree)
    rule = POLICY.rule_for(repository)
    facts = bounded(lambda: inspect_manifest(registry, repository, "top", rule), allowed=(ManifestError,),
                    what=f"{tree.levels} levels of {tree.width}")
    if isinstance(facts, Facts):
        offered = {f"{offer.platform.os}/{offer.platform.architecture}" for offer in facts.offers}
        assert offered <= {platform.rsplit("/", 1)[0] if platform.count("/") == 2 else platform
                           for platform in tree.platforms}, facts
