"""Real cosign and notation signatures still verify after Platform Guard re-imports, quarantines and releases an image.

Both tools sign upstream and guarded images with real keys (testbed/signing.py: a cosign key pair; a notation test
CA and a trust policy that trusts it). Platform Guard then remediates, and the tools verify the result on the guarded
registry, by digest. Two kinds of registry:
- distribution 2.8, without the referrers API: cosign's `sha256-<hex>.sig` tags and notation's referrers tag index;
- olareg, with the referrers API (distribution v3.1.2 does not serve it; testbed/registry.py): cosign's tags again,
  notation through the API (`--force-referrers-tag=false`).
The tools are built by scripts/setup; without them these tests are skipped, and under PLATFORM_GUARD_REQUIRE_TOOLS=1
(CI) they fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import OciRegistry
from importer.app.pipeline import Pipeline
from importer.app.registries import RegistryDirectory
from importer.app.remediation import quarantine_tag, release
from importer.app.settings import Settings
from importer.core.events import PushEvent
from importer.core.outcome import Outcome
from importer.core.policy import parse_policy
from testbed.images import ImageBuilder, children_of, multi, single
from testbed.push import push
from testbed.registry import REFERRERS_API_TOOL, LocalRegistry, ReferrersApiRegistry
from testbed.signing import Cosign, Notation
from testbed.tools import require_tool

GUARDED = "team/app"
UPSTREAM = "mirror/team/app"


@dataclass
class Registries:
    """An upstream and a guarded registry of one kind, and how notation should link signatures there."""

    upstream: str
    guarded: str
    referrers_api: bool


@pytest.fixture(params=[pytest.param(False, id="distribution-2.8"), pytest.param(True, id="referrers-api")])
def registries(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registries]:
    if request.param:
        require_tool(REFERRERS_API_TOOL)
        with ReferrersApiRegistry(tmp_path / "up") as up, ReferrersApiRegistry(tmp_path / "guarded") as guarded:
            yield Registries(up.host, guarded.host, True)
    else:
        with LocalRegistry(tmp_path / "up") as up, LocalRegistry(tmp_path / "guarded") as guarded:
            yield Registries(up.host, guarded.host, False)


def sign_both(cosign: Cosign, notation: Notation, registries: Registries, reference: str) -> None:
    cosign.sign(reference)
    notation.sign(reference, force_referrers_tag=not registries.referrers_api)


def assert_verifies(cosign: Cosign, notation: Notation, reference: str) -> None:
    by_cosign, by_notation = cosign.verify(reference), notation.verify(reference)
    assert by_cosign.ok, f"cosign verify {reference}: {by_cosign.output}"
    assert by_notation.ok, f"notation verify {reference}: {by_notation.output}"


def pipeline(tmp_path: Path, registries: Registries, policy: str) -> Pipeline:
    settings = Settings(registries=(registries.guarded,), policy=parse_policy(policy), ledger_path=tmp_path / "l.db")
    directory = RegistryDirectory(settings, factory=lambda host: OciRegistry(host))
    return Pipeline(policy=settings.policy, ledger=SqliteLedger(settings.ledger_path), registries=directory)


def pushed(host: str, digest: str, media_type: str, tag: str = "1.0") -> PushEvent:
    """The event of a push to the guarded repository, as the parsers build it (no notifications from olareg)."""
    return PushEvent(event_id=f"push-{digest[-12:]}", schema="distribution", action="push", origin=host,
                     repository=GUARDED, tag=tag, digest=digest, media_type=media_type, size=1, artifact="image",
                     actor="dev", user_agent="docker", occurred_at=None)


def reimport_policy(registries: Registries, require: str, *, flatten: bool = False) -> str:
    return (f"version: 1\ndefaults:\n  require: {require}\n  on_violation: reimport\n  flatten: {str(flatten).lower()}\n"
            f"  upstream: \"{registries.upstream}/mirror/{{repository}}\"\n")


def handle(flow: Pipeline, event: PushEvent) -> Outcome:
    outcome = flow.handle(event)
    assert outcome is not None
    return outcome


def test_a_reimported_signed_index_verifies_on_the_guarded_registry(
    registries: Registries, builder: ImageBuilder, cosign: Cosign, notation: Notation, tmp_path: Path
) -> None:
    """Whole index re-imported: cosign's and notation's signatures of the upstream index verify on the guarded one."""
    index = multi(builder, ["linux/amd64", "linux/arm64"])
    good = push(builder, index, registries.upstream, UPSTREAM, "1.0")
    sign_both(cosign, notation, registries, f"{registries.upstream}/{UPSTREAM}@{good}")
    offender = single(builder, "linux/arm64", seed="laptop")
    bad = push(builder, offender, registries.guarded, GUARDED, "1.0")

    outcome = handle(pipeline(tmp_path, registries, reimport_policy(registries, "[linux/amd64, linux/arm64]")),
                     pushed(registries.guarded, bad, offender.media_type))
    assert (outcome.result, outcome.new_digest, outcome.signatures) == ("reimported", good, "kept"), outcome.reason
    assert (outcome.referrers_copied or 0) >= 2
    assert_verifies(cosign, notation, f"{registries.guarded}/{GUARDED}@{good}")
    assert not cosign.verify(f"{registries.guarded}/{GUARDED}@{bad}").ok  # the offender was never signed


def test_a_flattened_reimport_of_a_recursively_signed_index_verifies(
    registries: Registries, builder: ImageBuilder, cosign: Cosign, notation: Notation, tmp_path: Path
) -> None:
    """Flattened to the amd64 child: that child's own signatures (`cosign sign --recursive`, notation on the child)
    verify on the guarded registry."""
    index = multi(builder, ["linux/amd64", "linux/arm64"], seed="recursive")
    good = push(builder, index, registries.upstream, UPSTREAM, "1.0")
    amd64 = children_of(builder, index)[0]
    cosign.sign(f"{registries.upstream}/{UPSTREAM}@{good}", recursive=True)
    notation.sign(f"{registries.upstream}/{UPSTREAM}@{amd64.digest}", force_referrers_tag=not registries.referrers_api)
    offender = single(builder, "linux/arm64", seed="laptop-2")
    bad = push(builder, offender, registries.guarded, GUARDED, "1.0")

    outcome = handle(pipeline(tmp_path, registries, reimport_policy(registries, "[linux/amd64]", flatten=True)),
                     pushed(registries.guarded, bad, offender.media_type))
    assert (outcome.result, outcome.new_digest, outcome.signatures) == ("reimported", amd64.digest, "kept"), \
        outcome.reason
    assert_verifies(cosign, notation, f"{registries.guarded}/{GUARDED}@{amd64.digest}")


def test_quarantine_and_release_keep_real_signatures_verifiable(
    registries: Registries, builder: ImageBuilder, cosign: Cosign, notation: Notation, tmp_path: Path
) -> None:
    """A signed arm64 image is quarantined: its signatures verify on the quarantined copy; the originals stay; after
    the guarded repository lost them, `release` brings the image back with them, verifiable again."""
    offender = single(builder, "linux/arm64", seed="signed-laptop")
    bad = push(builder, offender, registries.guarded, GUARDED, "1.0")
    sign_both(cosign, notation, registries, f"{registries.guarded}/{GUARDED}@{bad}")
    policy = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"
    flow = pipeline(tmp_path, registries, policy)

    outcome = handle(flow, pushed(registries.guarded, bad, offender.media_type))
    assert outcome.result == "quarantined", outcome.reason or outcome.error
    assert (outcome.referrers_copied or 0) >= 2
    assert_verifies(cosign, notation, f"{registries.guarded}/quarantine/{GUARDED}@{bad}")

    client = OciRegistry(registries.guarded)
    from importer.app.referrers import find_referrers

    for referrer in find_referrers(client, GUARDED, bad):  # as a registry that collects dangling referrers would
        client.delete_manifest(GUARDED, referrer.digest)
    assert not cosign.verify(f"{registries.guarded}/{GUARDED}@{bad}").ok
    released = release(client, flow.policy, flow.ledger, host=registries.guarded,
                       quarantine_repository=f"quarantine/{GUARDED}",
                       quarantine_reference=quarantine_tag("1.0", bad))
    assert released.digest == bad and released.referrers_copied >= 2
    assert client.head_manifest(GUARDED, "1.0").digest == bad  # type: ignore[union-attr]
    assert_verifies(cosign, notation, f"{registries.guarded}/{GUARDED}@{bad}")


@pytest.mark.parametrize("mode", ["oci-1-1", "bundle"])
def test_cosign_referrer_signatures_and_an_sbom_attestation_survive_a_reimport(
    registries: Registries, builder: ImageBuilder, cosign: Cosign, tmp_path: Path, mode: str
) -> None:
    """cosign's OCI 1.1 referrer modes (a signature with `subject`; a Sigstore bundle, which cosign lists under the
    empty artifact type) and a signed SPDX attestation come along and verify; the outcome says the signature was
    kept."""
    index = multi(builder, ["linux/amd64", "linux/arm64"], seed=f"mode-{mode}")
    good = push(builder, index, registries.upstream, UPSTREAM, "1.0")
    reference = f"{registries.upstream}/{UPSTREAM}@{good}"
    cosign.sign(reference, mode=mode)  # type: ignore[arg-type]
    attestation_mode = "bundle" if mode == "bundle" else "legacy"
    cosign.attest(reference, {"spdxVersion": "SPDX-2.3", "name": "app"}, mode=attestation_mode)
    offender = single(builder, "linux/arm64", seed=f"laptop-{mode}")
    bad = push(builder, offender, registries.guarded, GUARDED, "1.0")

    outcome = handle(pipeline(tmp_path, registries, reimport_policy(registries, "[linux/amd64, linux/arm64]")),
                     pushed(registries.guarded, bad, offender.media_type))
    assert (outcome.result, outcome.new_digest, outcome.signatures) == ("reimported", good, "kept"), outcome.reason
    guarded = f"{registries.guarded}/{GUARDED}@{good}"
    verified = cosign.verify(guarded, mode=mode)  # type: ignore[arg-type]
    assert verified.ok, verified.output
    attested = cosign.verify_attestation(guarded, mode=attestation_mode)
    assert attested.ok, attested.output
