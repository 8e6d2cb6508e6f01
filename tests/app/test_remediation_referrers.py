"""Re-import, quarantine and release keep an image's signatures, attestations and SBOMs (issue 13), end to end.

A guarded distribution registry (no referrers API: cosign tags and the referrers tag schema) sends its events to the
local host; the upstream holds signed images. Signatures are shaped as the tools push them (testbed/signatures.py);
tests/interop runs the real cosign and notation against the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app.remediation import quarantine_tag
from importer.core.media_types import NOTARY_SIGNATURE
from importer.core.referrers import referrers_in_index, referrers_tag
from importer.entry.cli import main
from testbed.images import ImageBuilder, children_of, cosign_tag, multi, single
from testbed.push import fetch_manifest, list_tags, push, push_raw_manifest
from testbed.registry import LocalRegistry
from testbed.signatures import Signer, signed_index
from testbed.stack import GuardedRegistry

UPSTREAM_REPOSITORY = "mirror/team/app"


def reimport_policy(upstream_host: str, *, require: str, forbid: str = "[]", signatures: str = "allow-loss") -> str:
    return (
        "version: 1\n"
        "defaults:\n"
        f"  require: {require}\n"
        f"  forbid: {forbid}\n"
        "  on_violation: reimport\n"
        f"  upstream: \"{upstream_host}/mirror/{{repository}}\"\n"
        f"  signatures: {signatures}\n"
    )


def listed(host: str, repository: str, subject: str) -> list[str]:
    """The artifact types the referrers tag's index of `subject` lists."""
    return [referrer.artifact_type or "" for referrer in
            referrers_in_index(fetch_manifest(host, repository, referrers_tag(subject)).body)]


REIMPORTS = {
    # platforms upstream, policy (require, forbid, signatures), result, what the tag points at, signatures, copied
    "whole-signed-index": (["linux/amd64", "linux/arm64"], ("[linux/amd64, linux/arm64]", "[]", "allow-loss"),
                           "reimported", "index", "kept", 3),
    "filtered-index-loses-them": (["linux/amd64", "linux/arm64", "windows/amd64"],
                                  ("[linux/amd64, linux/arm64]", '["windows/*"]', "allow-loss"),
                                  "reimported", "new", "lost", 2),
    "keep-quarantines-instead": (["linux/amd64", "linux/arm64", "windows/amd64"],
                                 ("[linux/amd64, linux/arm64]", '["windows/*"]', "keep"),
                                 "quarantined", None, None, 0),
    "keep-flattens-to-the-signed-child": (["linux/amd64", "linux/arm64", "windows/amd64"],
                                          ("[linux/amd64]", '["windows/*"]', "keep"),
                                          "reimported", "child", "kept", 1),
    "keep-with-a-compliant-index-takes-it-whole": (["linux/amd64", "linux/arm64"],
                                                   ("[linux/amd64]", "[]", "keep"),
                                                   "reimported", "index", "kept", 3),
}


@pytest.mark.parametrize(("platforms", "policy", "result", "points_at", "signatures", "copied"),
                         REIMPORTS.values(), ids=REIMPORTS.keys())
def test_a_reimport_brings_the_upstream_signatures_or_says_they_are_lost(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder,
    platforms: list[str], policy: tuple[str, str, str], result: str, points_at: str | None,
    signatures: str | None, copied: int,
) -> None:
    """The upstream index is signed by Notation and each child by cosign; what the tag ends up on says what stays."""
    index, children, _ = signed_index(builder, upstream.host, UPSTREAM_REPOSITORY, "1.0", platforms)
    require, forbid, keep = policy
    stack = guarded(reimport_policy(upstream.host, require=require, forbid=forbid, signatures=keep))
    bad = push(builder, single(builder, "linux/arm64", seed="laptop"), stack.registry.host, "team/app", "1.0")

    outcome = stack.wait_for("team/app", tag="1.0")
    assert outcome.result == result, outcome.reason or outcome.error
    assert (outcome.signatures, outcome.referrers_copied or 0) == (signatures, copied)
    host = stack.registry.host
    if result == "quarantined":
        assert "signatures: keep" in (outcome.reason or "")
        assert outcome.preserved_as == f"{host}/quarantine/team/app:{quarantine_tag('1.0', bad)}"
        return
    points = {"index": index.digest, "child": children[0].digest}.get(points_at or "", None)
    if points is not None:
        assert outcome.new_digest == points
    tags = set(list_tags(host, "team/app"))
    carried = {  # the children whose own signatures came along
        "index": children,
        "new": [child for child in children if (child.platform or {}).get("os") != "windows"],
        "child": children[:1],
    }[points_at or ""]
    assert {child.digest for child in children if cosign_tag(child, "sig") in tags} == \
        {child.digest for child in carried}
    assert (referrers_tag(index.digest) in tags) is (points_at == "index")
    if points_at == "index":
        assert listed(host, "team/app", index.digest) == [NOTARY_SIGNATURE]
    if signatures == "lost":
        assert "signatures: lost" in (outcome.reason or "")


def test_quarantine_moves_the_signatures_with_the_image_and_release_brings_them_back(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quarantined copy has the image's referrers next to it; the originals are not deleted; a release puts the
    image back with them, even where the registry lost them meanwhile."""
    stack = guarded("version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n")
    host = stack.registry.host
    image = single(builder, "linux/arm64", seed="signed-laptop-build")
    push(builder, image, host, "team/app", None)  # by digest: the signatures need their subject first
    signer = Signer(builder, host, "team/app")
    cosign = signer.cosign(image)
    notation = signer.notation(image)
    for own_push in (None, cosign_tag(image, "sig"), referrers_tag(image.digest)):
        if own_push is not None:
            assert stack.wait_for("team/app", tag=own_push).result == "ignored"
    push_raw_manifest(host, "team/app", "1.0", builder.blob(image.digest), image.media_type)

    outcome = stack.wait_for("team/app", tag="1.0")
    assert outcome.result == "quarantined", outcome.reason or outcome.error
    assert outcome.referrers_copied == 2
    kept = quarantine_tag("1.0", image.digest)
    quarantine_tags = set(list_tags(host, "quarantine/team/app"))
    assert {kept, cosign_tag(image, "sig"), referrers_tag(image.digest)} <= quarantine_tags
    assert NOTARY_SIGNATURE in listed(host, "quarantine/team/app", image.digest)
    assert fetch_manifest(host, "team/app", cosign.digest).digest == cosign.digest  # the originals stay
    assert fetch_manifest(host, "team/app", notation.digest).digest == notation.digest

    guarded_client = OciRegistry(host)  # a registry that drops dangling referrers would do this
    guarded_client.delete_manifest("team/app", cosign.digest)
    guarded_client.delete_manifest("team/app", notation.digest)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("version: 1\ndefaults:\n  require: [linux/amd64]\n")
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(stack.settings.ledger_path))
    capsys.readouterr()
    assert main(["release", outcome.preserved_as or "", "--policy", str(policy_file)]) == 0
    assert "referrers: 2" in capsys.readouterr().out
    assert fetch_manifest(host, "team/app", "1.0").digest == image.digest
    assert fetch_manifest(host, "team/app", cosign_tag(image, "sig")).digest == cosign.digest
    assert fetch_manifest(host, "team/app", notation.digest).digest == notation.digest
    assert NOTARY_SIGNATURE in listed(host, "team/app", image.digest)


def test_a_quarantine_of_an_index_keeps_the_signatures_of_its_children(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder,
) -> None:
    """Referrers of every manifest of a quarantined index come along, the children's included."""
    stack = guarded("version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n")
    host = stack.registry.host
    index = multi(builder, ["linux/arm64", "linux/arm/v7"])
    push(builder, index, host, "team/app", None)
    signer = Signer(builder, host, "team/app")
    children = children_of(builder, index)
    for child in children:
        signer.cosign(child)
        assert stack.wait_for("team/app", tag=cosign_tag(child, "sig")).result == "ignored"
    push_raw_manifest(host, "team/app", "2.0", builder.blob(index.digest), index.media_type)
    outcome = stack.wait_for("team/app", tag="2.0")
    assert (outcome.result, outcome.referrers_copied) == ("quarantined", 2), outcome.reason
    assert {cosign_tag(child, "sig") for child in children} <= set(list_tags(host, "quarantine/team/app"))
