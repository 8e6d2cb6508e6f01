"""Referrers carried by copies, on real registries (importer.app.referrers, importer.app.copying `referrers=True`).

Signatures are shaped as cosign and Notation push them (testbed/images.py) and linked the way a registry without the
referrers API links them: cosign tags, and the referrers tag schema's index that Notation keeps. The interop tests
with the real tools and a registry that serves the referrers API are in tests/interop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app import referrers as referrers_module
from importer.app.copying import CopyError, copy_image
from importer.app.referrers import add_referrers, copy_referrers, find_referrers
from importer.core.media_types import NOTARY_SIGNATURE, QUARANTINE_ORIGIN_ARTIFACT
from importer.core.platforms import parse
from importer.core.referrers import referrers_in_index, referrers_tag
from importer.ports.registry import Registry
from testbed.images import Descriptor, ImageBuilder, cosign_tag, single
from testbed.push import fetch_manifest, list_tags, push
from testbed.registry import LocalRegistry, ReferrersApiRegistry
from testbed.signatures import Signer, signed_index

SOURCE = "mirror/app"
TARGET = "team/app"


def signed_upstream(builder: ImageBuilder, registry: LocalRegistry, platforms: Sequence[str], *,
                    sign_children: bool = True) -> tuple[Descriptor, list[Descriptor], Signer]:
    return signed_index(builder, registry.host, SOURCE, "1.0", platforms, sign_children=sign_children)


def names(registry: LocalRegistry, repository: str) -> set[str]:
    return set(list_tags(registry.host, repository))


def test_find_referrers_reads_the_tag_schemes_and_leaves_our_own_artifacts_out(
    builder: ImageBuilder, registry: LocalRegistry
) -> None:
    """On a registry without the referrers API: the referrers tag's index and the cosign tags, each found once."""
    image = single(builder, "linux/amd64")
    push(builder, image, registry.host, SOURCE, "1.0")
    signer = Signer(builder, registry.host, SOURCE)
    notation = signer.notation(image)
    cosign = signer.cosign(image)
    attestation = signer.cosign(image, "att")
    origin = builder.artifact(QUARANTINE_ORIGIN_ARTIFACT, subject=image)
    push(builder, origin, registry.host, SOURCE, None)
    push(builder, builder.referrers_index([notation, origin]), registry.host, SOURCE, referrers_tag(image.digest))

    found = {referrer.digest: referrer for referrer in find_referrers(OciRegistry(registry.host), SOURCE, image.digest)}
    assert set(found) == {notation.digest, cosign.digest, attestation.digest}
    assert found[notation.digest].artifact_type == NOTARY_SIGNATURE and found[notation.digest].tag is None
    assert found[cosign.digest].tag == cosign_tag(image, "sig") and found[cosign.digest].is_signature
    assert not found[attestation.digest].is_signature


COPIES = {
    # options, what the tag points at, signatures, referrers copied (index: Notation; each child: cosign)
    "whole-index": ({}, "index", "kept", 4),
    "filtered-index": ({"exclude": ("windows/*",)}, "new", "lost", 2),
    "flattened-signed-child": ({"platforms": (parse("linux/amd64"),), "flatten": True}, "child", "kept", 1),
}


@pytest.mark.parametrize(("options", "points_at", "signatures", "copied"), COPIES.values(), ids=COPIES.keys())
def test_a_copy_carries_the_referrers_of_what_it_copies_unchanged(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    options: dict[str, object], points_at: str, signatures: str, copied: int,
) -> None:
    """Whole: the index's and every child's signatures. Filtered: the kept children's (the new index is unsigned:
    lost). Flattened: the child's own signature (kept)."""
    index, children, _ = signed_upstream(builder, registry, ["linux/amd64", "linux/arm64", "windows/amd64"])
    source, target = OciRegistry(registry.host), OciRegistry(target_registry.host)
    result = copy_image(source, SOURCE, "1.0", target, TARGET, "1.0", referrers=True, **options)  # type: ignore[arg-type]

    expected_digest = {"index": index.digest, "child": children[0].digest}.get(points_at)
    if expected_digest is not None:
        assert result.digest == expected_digest
    else:
        assert result.digest not in {index.digest, *(child.digest for child in children)}
    assert (result.signatures, result.referrers_copied) == (signatures, copied)
    kept_children = [child for child in children if child.digest in result.unchanged]
    for child in kept_children:  # every unchanged child still verifies by its cosign tag
        assert cosign_tag(child, "sig") in names(target_registry, TARGET)
    if points_at == "index":
        listed = referrers_in_index(fetch_manifest(target_registry.host, TARGET, referrers_tag(index.digest)).body)
        assert [referrer.artifact_type for referrer in listed] == [NOTARY_SIGNATURE]
    else:
        assert referrers_tag(index.digest) not in names(target_registry, TARGET)
    assert result.as_dict()["referrers_copied"] == copied and result.as_dict()["signatures"] == signatures


def test_a_flattened_unsigned_child_of_a_signed_index_has_lost_its_signatures(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """cosign signs an index without `--recursive`: its children have no signature of their own."""
    signed_upstream(builder, registry, ["linux/amd64", "linux/arm64"], sign_children=False)
    result = copy_image(OciRegistry(registry.host), SOURCE, "1.0", OciRegistry(target_registry.host), TARGET, "1.0",
                        platforms=(parse("linux/arm64"),), flatten=True, referrers=True)
    assert (result.signatures, result.referrers_copied) == ("lost", 0)


def test_without_referrers_nothing_comes_along(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """`referrers=False` (the engine's default, `copy --no-referrers`) copies the image alone."""
    index, _, _ = signed_upstream(builder, registry, ["linux/amd64"])
    result = copy_image(OciRegistry(registry.host), SOURCE, "1.0", OciRegistry(target_registry.host), TARGET, "1.0")
    assert (result.referrers_copied, result.signatures) == (0, None)
    assert names(target_registry, TARGET) == {"1.0"}


def test_referrers_of_referrers_come_too(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """An attestation's own signature (cosign signs what it attests to) is carried with the attestation."""
    image = single(builder, "linux/amd64")
    push(builder, image, registry.host, SOURCE, "1.0")
    signer = Signer(builder, registry.host, SOURCE)
    attestation = signer.cosign(image, "att")
    signature_of_attestation = signer.notation(attestation)
    result = copy_image(OciRegistry(registry.host), SOURCE, "1.0", OciRegistry(target_registry.host), TARGET, "1.0",
                        referrers=True)
    assert result.referrers_copied == 2
    assert fetch_manifest(target_registry.host, TARGET, signature_of_attestation.digest).digest == \
        signature_of_attestation.digest
    listed = referrers_in_index(fetch_manifest(target_registry.host, TARGET, referrers_tag(attestation.digest)).body)
    assert [referrer.digest for referrer in listed] == [signature_of_attestation.digest]


def test_a_copy_over_the_referrer_limit_is_refused(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """More referrers than one copy may carry is a CopyError that names the limit."""
    image = single(builder, "linux/amd64")
    push(builder, image, registry.host, SOURCE, "1.0")
    signer = Signer(builder, registry.host, SOURCE)
    for n in range(3):
        signer.notation(image, seed=str(n))
    source, target = OciRegistry(registry.host), OciRegistry(target_registry.host)
    with pytest.raises(CopyError, match="more than the 2 referrers"):
        copy_referrers(source, SOURCE, target, TARGET, [image.digest], limit=2,
                       bring=lambda referrer: copy_image(source, SOURCE, referrer.digest, target, TARGET, None))


class _RacingWriter:
    """A registry client whose first write of a referrers index is overwritten at once by another writer's index."""

    def __init__(self, registry: OciRegistry, rival: bytes) -> None:
        self.registry = registry
        self.rival = rival
        self.raced = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.registry, name)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        digest = self.registry.put_manifest(repository, reference, raw, media_type)
        if reference.startswith("sha256-") and not self.raced:
            self.raced += 1
            self.registry.put_manifest(repository, reference, self.rival, media_type)
        return digest


def test_the_referrers_index_is_written_again_when_a_concurrent_writer_dropped_our_entry(
    builder: ImageBuilder, registry: LocalRegistry
) -> None:
    """Read, add, write, read back: an index that lost our entry to another writer is extended again, keeping the
    other writer's entry too."""
    image = single(builder, "linux/amd64")
    push(builder, image, registry.host, TARGET, "1.0")
    ours = builder.notation_signature(image, seed="ours")
    theirs = builder.notation_signature(image, seed="theirs")
    for signature in (ours, theirs):
        push(builder, signature, registry.host, TARGET, None)
    rival = builder.blob(builder.referrers_index([theirs]).digest)
    racing = _RacingWriter(OciRegistry(registry.host), rival)
    entry = {"mediaType": ours.media_type, "digest": ours.digest, "size": ours.size, "artifactType": NOTARY_SIGNATURE}
    assert add_referrers(racing, TARGET, image.digest, [entry], sleep=lambda _: None)  # type: ignore[arg-type]
    assert racing.raced == 1
    listed = referrers_in_index(fetch_manifest(registry.host, TARGET, referrers_tag(image.digest)).body)
    assert {referrer.digest for referrer in listed} == {ours.digest, theirs.digest}


def test_copy_referrers_counts_what_it_brings_and_which_subjects_were_signed(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """The building block used by server-side import: `bring` is called once per referrer; `examine` digests are
    looked at, never copied."""
    index, children, _ = signed_upstream(builder, registry, ["linux/amd64", "linux/arm64"])
    source: Registry = OciRegistry(registry.host)
    target: Registry = OciRegistry(target_registry.host)
    copy_image(source, SOURCE, children[0].digest, target, TARGET, None)
    brought: list[str] = []

    def bring(referrer: referrers_module.Referrer) -> None:
        brought.append(referrer.digest)
        copy_image(source, SOURCE, referrer.digest, target, TARGET, referrer.tag)

    carried = copy_referrers(source, SOURCE, target, TARGET, [children[0].digest], examine=[index.digest],
                             bring=bring)
    assert carried.copied == len(brought) == 1
    assert carried.signed == {children[0].digest, index.digest}
    assert cosign_tag(children[0], "sig") in names(target_registry, TARGET)


def test_a_dangling_entry_of_the_referrers_index_is_skipped(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry
) -> None:
    """Deletes never prune the referrers tag's index: an entry whose manifest is gone is not carried, the rest is."""
    index, _, signer = signed_upstream(builder, registry, ["linux/amd64"], sign_children=False)
    gone = signer.notation(index, seed="deleted later")
    OciRegistry(registry.host).delete_manifest(SOURCE, gone.digest)
    result = copy_image(OciRegistry(registry.host), SOURCE, "1.0", OciRegistry(target_registry.host), TARGET, "1.0",
                        referrers=True)
    assert (result.referrers_copied, result.signatures) == (1, "kept")
    listed = referrers_in_index(fetch_manifest(target_registry.host, TARGET, referrers_tag(index.digest)).body)
    assert gone.digest not in {referrer.digest for referrer in listed} and len(listed) == 1


BETWEEN = {
    # source has the referrers API?, target has it?
    "tag-schema-to-referrers-api": (False, True),
    "referrers-api-to-tag-schema": (True, False),
    "referrers-api-to-referrers-api": (True, True),
}


@pytest.mark.parametrize(("source_api", "target_api"), BETWEEN.values(), ids=BETWEEN.keys())
def test_referrers_are_written_the_way_the_target_registry_links_them(
    builder: ImageBuilder, registry: LocalRegistry, referrers_registry: ReferrersApiRegistry, tmp_path: Path,
    source_api: bool, target_api: bool,
) -> None:
    """Read through the API where the source has it, else the tag schemes; written so the target's readers find them:
    a target with the API indexes `subject` itself (no referrers tag is written), one without gets the index."""
    with ReferrersApiRegistry(tmp_path / "second-api") as second_api:
        api_registries = iter((referrers_registry, second_api))
        source_host = next(api_registries).host if source_api else registry.host
        target_host = next(api_registries).host if target_api else registry.host
        index, children, _ = signed_index(builder, source_host, SOURCE, "1.0", ["linux/amd64", "linux/arm64"],
                                          index_tags=not source_api)
        source, target = OciRegistry(source_host), OciRegistry(target_host)
        result = copy_image(source, SOURCE, "1.0", target, TARGET, "1.0", referrers=True)
        assert (result.referrers_copied, result.signatures) == (3, "kept")
        tags = set(target.list_tags(TARGET))
        assert {cosign_tag(child, "sig") for child in children} <= tags
        assert (referrers_tag(index.digest) in tags) is not target_api
        found = find_referrers(target, TARGET, index.digest)
        assert [referrer.artifact_type for referrer in found] == [NOTARY_SIGNATURE]
