"""Signatures, attestations, SBOMs and referrers indexes on real registries: never judged as images, never removed.

Each case is pushed the way the tools push it (cosign's `sha256-<hex>.sig|att|sbom` tags, Notation signatures by
digest, the referrers tag schema's `sha256-<hex>` index; blobs, then manifests by digest, then the tag, as cosign,
notation and oras write: skopeo refuses a Docker v2 manifest with cosign's layers) to a registry guarded by the
local host, next to the amd64 image it is about, and judged twice: through the event path (registry notification →
local host → pipeline → ledger) and through `python -m importer check --json` (in process). Images under such names
are the guards: a name never exempts a runnable image. Broken image configs end `failed` with a message that names
the config and the field, never a Python dict. The sweep (`audit`) counts them as ignored. Untagged OCI pushes are
read once to tell a referrer from a child of a multi-arch push, and a failed read keeps the usual reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import OciRegistry
from importer.app.inspection import evaluate
from importer.app.pipeline import Pipeline
from importer.app.settings import Settings
from importer.app.sweep import Sweep
from importer.core.events import PushEvent
from importer.core.policy import parse_policy
from importer.entry.cli import main
from importer.entry.composition import registry_directory_for
from testbed.faults import FaultProxy
from testbed.images import (
    COSE_ENVELOPE,
    CYCLONEDX_XML,
    DSSE_ENVELOPE,
    NOTARY_SIGNATURE,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_V03,
    SPDX_JSON,
    Descriptor,
    ImageBuilder,
    canonical_json,
    cosign_tag,
    deterministic_gzip,
    deterministic_tar,
    multi,
    referrers_tag,
    single,
)
from testbed.push import fetch_manifest, list_tags, push
from testbed.registry import LocalRegistry
from testbed.stack import GuardedRegistry

ALERT_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: alert\n"
QUARANTINE_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"
HISTORY_MARK = "RUN make-it-arm64"  # in every broken config: the message must not quote the config whole


def image_with_config(builder: ImageBuilder, config: bytes, seed: str) -> Descriptor:
    """An OCI image manifest with one filesystem layer and exactly these config bytes (any bytes: bad-input cases)."""
    layer = builder.add_blob(deterministic_gzip(deterministic_tar({"seed.txt": seed.encode()})), OCI_LAYER)
    config_blob = builder.add_blob(config, OCI_CONFIG)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_blob.to_json(), "layers": [layer.to_json()]}
    return builder.raw_manifest(canonical_json(body), OCI_MANIFEST)


def config_json(**fields: object) -> bytes:
    return canonical_json({**fields, "history": [{"created_by": HISTORY_MARK}], "rootfs": {"type": "layers"}})


def check(stack: GuardedRegistry, tmp_path: Path, policy: str, tag: str,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`python -m importer check HOST/team/app:TAG --json`: exit code, stdout, stderr."""
    policy_file = tmp_path / "check-policy.yaml"
    policy_file.write_text(policy)
    capsys.readouterr()
    code = main(["check", f"{stack.registry.host}/team/app:{tag}", "--policy", str(policy_file), "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_no_python_repr(text: str) -> None:
    assert "{'" not in text and '{"' not in text and HISTORY_MARK not in text, text


# -- tagged pushes: judged or not, through the event path and `check` ------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[ImageBuilder, Descriptor], tuple[Descriptor, str]]  # (what to push, its tag), given the subject
    result: str  # the event path's outcome: ignored | alerted | failed
    kind: str | None
    says: tuple[str, ...]  # in the reason (ignored, alerted) or the error (failed); {subject}: the subject's digest


def _cosign(layer_media_type: str, suffix: str, *, docker: bool = False) -> Callable[..., tuple[Descriptor, str]]:
    return lambda b, subject: (b.cosign_artifact(subject, layer_media_type=layer_media_type, docker=docker),
                               cosign_tag(subject, suffix))


def _notation_referrers_index(b: ImageBuilder, subject: Descriptor) -> tuple[Descriptor, str]:
    signatures = [b.notation_signature(subject), b.notation_signature(subject, envelope=COSE_ENVELOPE, seed="cose")]
    return b.referrers_index(signatures), referrers_tag(subject)


def _index_whose_amd64_entry_is_a_signature(b: ImageBuilder, subject: Descriptor) -> tuple[Descriptor, str]:
    signature = dataclasses.replace(b.cosign_artifact(subject, seed="listed"),
                                    platform={"architecture": "amd64", "os": "linux"})
    return b.index([signature, b.image("linux/arm64", seed="listed")]), "2.0"


def _broken_cosign_lookalike(b: ImageBuilder, subject: Descriptor) -> tuple[Descriptor, str]:
    return image_with_config(b, config_json(os="", architecture=""), "lookalike"), cosign_tag(subject, "sig")


CASES = [
    Case("cosign-signature", _cosign("application/vnd.dev.cosign.simplesigning.v1+json", "sig"), "ignored",
         "signature", ("cosign signature (application/vnd.dev.cosign.simplesigning.v1+json) of {subject}, "
                       "not a runnable image",)),
    Case("cosign-signature-docker-media-types",
         _cosign("application/vnd.dev.cosign.simplesigning.v1+json", "sig", docker=True), "ignored", "signature",
         ("cosign signature", "of {subject}")),
    Case("cosign-attestation", _cosign(DSSE_ENVELOPE, "att"), "ignored", "attestation",
         (f"cosign attestation ({DSSE_ENVELOPE}) of {{subject}}",)),
    Case("cosign-sbom-spdx", _cosign(SPDX_JSON, "sbom"), "ignored", "sbom",
         (f"cosign SBOM ({SPDX_JSON}) of {{subject}}",)),
    Case("cosign-sbom-cyclonedx-xml", _cosign(CYCLONEDX_XML, "sbom"), "ignored", "sbom", (CYCLONEDX_XML, "{subject}")),
    Case("sigstore-bundle-under-a-tag",
         lambda b, subject: (b.artifact(SIGSTORE_BUNDLE_V03, subject=subject, layer_media_type=SIGSTORE_BUNDLE_V03),
                             "bundle"),
         "ignored", "signature", (f"Sigstore bundle signature ({SIGSTORE_BUNDLE_V03}) of {{subject}}",)),
    Case("notation-referrers-tag-index", _notation_referrers_index, "ignored", "referrers",
         ("referrers index of {subject} listing 2 signatures, not a runnable image",)),
    Case("empty-referrers-tag-index", lambda b, subject: (b.referrers_index([]), referrers_tag(subject)), "ignored",
         "referrers", ("referrers index of {subject} listing nothing",)),
    Case("arm64-image-under-a-sig-tag",
         lambda b, subject: (single(b, "linux/arm64", seed="hidden"), cosign_tag(subject, "sig")), "alerted", "image",
         ("offers linux/arm64", "nothing offered is runnable on linux/amd64")),
    Case("arm64-index-under-a-referrers-tag",
         lambda b, subject: (multi(b, ["linux/arm64"], seed="hidden"), referrers_tag(subject)), "alerted", "index",
         ("nothing offered is runnable on linux/amd64",)),
    Case("index-whose-amd64-entry-is-a-signature", _index_whose_amd64_entry_is_a_signature, "alerted", "index",
         ("offers linux/arm64 (not counted as platforms: 1 artifact)", "nothing offered is runnable on linux/amd64")),
    Case("empty-platform-config-over-a-filesystem-layer-under-a-sig-tag", _broken_cosign_lookalike, "failed", None,
         (": config: 'os' must be a non-empty string, got \"\"",)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_signatures_and_artifacts_are_not_judged_as_images(
    case: Case, guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A signature, attestation, SBOM or referrers index ends `ignored` with its kind and a reason naming what it is
    and what it refers to, and `check --json` exits 0 with that kind; an image under such a name is judged."""
    stack = guarded(ALERT_POLICY)
    subject_image = single(builder, "linux/amd64")
    subject = push(builder, subject_image, stack.registry.host, "team/app", "1.0")
    assert stack.wait_for("team/app", tag="1.0").result == "compliant"
    artifact, tag = case.build(builder, subject_image)
    digest = push(builder, artifact, stack.registry.host, "team/app", tag, via="raw")  # as cosign and oras write

    outcome = stack.wait_for("team/app", tag=tag)
    text = (outcome.error if case.result == "failed" else outcome.reason) or ""
    assert outcome.result == case.result, (outcome.reason, outcome.error)
    assert outcome.digest == digest
    if case.kind is not None:
        assert outcome.kind == case.kind
    for fragment in case.says:
        assert fragment.format(subject=subject) in text, text
    assert_no_python_repr(text)

    code, printed, error = check(stack, tmp_path, ALERT_POLICY, tag, capsys)
    assert code == {"ignored": 0, "alerted": 1, "failed": 3}[case.result], error
    if case.result == "failed":
        for fragment in case.says:
            assert fragment.format(subject=subject) in error
        assert_no_python_repr(error)
        return
    verdict = json.loads(printed)
    assert (verdict["kind"], verdict["digest"], verdict["reason"]) == (case.kind, digest, outcome.reason)
    assert verdict["verdict"] == ("ignored" if case.result == "ignored" else "violation")


# -- what telling costs: the manifest, and an image config at most once ------------------------------------------


def _reads_cosign_signature(b: ImageBuilder, subject: Descriptor) -> tuple[Descriptor, str]:
    return b.cosign_artifact(subject), cosign_tag(subject, "sig")


# id: (what is pushed and its tag, manifest GETs, blob GETs)
READS = {
    "cosign-signature-reads-its-config-once": (_reads_cosign_signature, 1, 1),
    "arm64-image-under-a-sig-tag-reads-its-config-once": (
        lambda b, subject: (single(b, "linux/arm64", seed="reads"), cosign_tag(subject, "sig")), 1, 1),
    "notation-signature-reads-no-config": (lambda b, subject: (b.notation_signature(subject), "notation"), 1, 0),
    "referrers-index-reads-no-child": (_notation_referrers_index, 1, 0),
    "helm-chart-reads-no-config": (lambda b, subject: (b.helm_chart("shop", "1.0.0"), "1.0.0"), 1, 0),
}


@pytest.mark.parametrize(("build", "manifests", "blobs"), READS.values(), ids=READS.keys())
def test_telling_an_artifact_reads_the_manifest_and_an_image_config_at_most_once(
    build: Callable[[ImageBuilder, Descriptor], tuple[Descriptor, str]], manifests: int, blobs: int,
    registry: LocalRegistry, builder: ImageBuilder,
) -> None:
    """Deciding what a push is costs its manifest and, for an image config, that config once (the same read gives
    the platform of an image); artifacts with other configs and referrers indexes cost the manifest alone."""
    subject = single(builder, "linux/amd64")
    push(builder, subject, registry.host, "team/app", "1.0", via="raw")
    artifact, tag = build(builder, subject)
    push(builder, artifact, registry.host, "team/app", tag, via="raw")
    with FaultProxy(registry.host) as proxy:
        evaluate(parse_policy(ALERT_POLICY), OciRegistry(proxy.host), "team/app", tag)
        gets = [request.path for request in proxy.history() if request.method == "GET"]
    assert len([path for path in gets if "/manifests/" in path]) == manifests, gets
    assert len([path for path in gets if "/blobs/" in path]) == blobs, gets


# -- broken image configs: what was wrong and where, never a dict --------------------------------------------------

BROKEN_CONFIGS = {
    "architecture-is-a-number": (config_json(os="linux", architecture=64),
                                 "'architecture' must be a non-empty string, got 64"),
    "os-is-an-object": (config_json(os={"name": "linux"}, architecture="amd64"),
                        "'os' must be a non-empty string, got an object with 1 key"),
    "variant-is-a-list": (config_json(os="linux", architecture="arm", variant=["v7"]),
                          "'variant' must be a string, got an array of 1 item"),
    "os-features-is-a-string": (config_json(os="windows", architecture="amd64", **{"os.features": "win32k"}),
                                "'os.features' must be a list of strings, got \"win32k\""),
    "no-platform-at-all": (config_json(), "'os' missing"),
    "config-is-an-array": (b'["linux", "amd64"]', "expected a JSON object, got an array of 2 items"),
    "config-is-not-json": (b"\x1f\x8b\x08 not json", "is not valid JSON"),
}


@pytest.mark.parametrize(("config", "problem"), BROKEN_CONFIGS.values(), ids=BROKEN_CONFIGS.keys())
def test_a_broken_image_config_is_named_with_its_field(
    config: bytes, problem: str, guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An image whose config is unreadable or mistyped ends `failed` (and `check` exits 3) with an error that names
    the config blob and the field and says what it held, in JSON's terms: never the config as a Python dict."""
    stack = guarded(ALERT_POLICY)
    image = image_with_config(builder, config, "broken")
    config_digest = builder.document(image)["config"]["digest"]
    push(builder, image, stack.registry.host, "team/app", "broken", via="raw")

    outcome = stack.wait_for("team/app", tag="broken")
    assert outcome.result == "failed", outcome.reason
    assert (outcome.error or "").startswith(f"{config_digest}: config") and problem in (outcome.error or ""), \
        outcome.error
    assert_no_python_repr(outcome.error or "")
    code, _, error = check(stack, tmp_path, ALERT_POLICY, "broken", capsys)
    assert code == 3
    assert f"{config_digest}: config" in error and problem in error, error
    assert_no_python_repr(error)


# -- untagged pushes: a referrer, or a child of a multi-arch push --------------------------------------------------


def test_an_untagged_notation_signature_is_named_not_taken_for_a_child(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder
) -> None:
    """A Notation signature pushed by digest is `ignored` as a signature of its subject; the children of a multi-arch
    push pushed next to it keep their usual reason."""
    stack = guarded(ALERT_POLICY)
    subject_image = multi(builder, ["linux/amd64", "linux/arm64"])
    subject = push(builder, subject_image, stack.registry.host, "team/app", "1.0")
    signature = push(builder, builder.notation_signature(subject_image), stack.registry.host, "team/app", None,
                     via="raw")

    outcomes = stack.wait_until(lambda found: sum(o.tag is None for o in found) >= 3)
    untagged = {o.digest: o for o in outcomes if o.tag is None}
    named = untagged.pop(signature)
    assert (named.result, named.kind) == ("ignored", "signature")
    assert named.reason == (f"untagged push of {signature}: Notation signature ({NOTARY_SIGNATURE}) of {subject}, "
                            "not a runnable image")
    assert len(untagged) == 2
    for digest, child in untagged.items():
        assert (child.result, child.kind) == ("ignored", None)
        assert child.reason == f"untagged push of {digest} (a child manifest of a multi-arch push)"


USUAL_REASON = "untagged push of {digest} (a child manifest of a multi-arch push)"
# id: how the one manifest read fails (FaultProxy fault, a canned answer, or the manifest deleted first)
READ_FAILURES = {
    "registry-unavailable": "503",
    "access-denied": "403",
    "content-corrupted": "corrupt",
    "manifest-already-gone": "deleted",
    "not-a-manifest": "canned",
}


@pytest.mark.parametrize("failure", [None, *READ_FAILURES.values()], ids=["read-works", *READ_FAILURES.keys()])
def test_a_failed_read_of_an_untagged_push_keeps_the_usual_reason(
    failure: str | None, registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path
) -> None:
    """The read that names an untagged referrer changes only the reason: when it fails the push is still `ignored`,
    with the usual reason, never `failed`, `retrying` or an alert (the pipeline's docstring says why)."""
    subject = single(builder, "linux/amd64")
    push(builder, subject, registry.host, "team/app", "1.0")
    signature = push(builder, builder.notation_signature(subject), registry.host, "team/app", None, via="raw")
    path = f"/v2/team/app/manifests/{signature}"
    injected = failure in ("503", "403", "corrupt")
    with FaultProxy(registry.host, rate=1.0 if injected else 0.0, faults=[failure if injected else "503"],
                    match=f"^GET {path}$") as proxy:
        if failure == "deleted":
            OciRegistry(registry.host).delete_manifest("team/app", signature)
        if failure == "canned":
            proxy.respond(path, body=b"<html>login</html>", headers={"Content-Type": OCI_MANIFEST,
                                                                   "Docker-Content-Digest": signature})
        policy = parse_policy(ALERT_POLICY)
        ledger = SqliteLedger(tmp_path / "ledger.db")
        try:
            pipeline = Pipeline(policy=policy, ledger=ledger, registries=registry_directory_for(
                Settings(registries=(proxy.host,), policy=policy)))
            event = PushEvent(event_id="untagged-1", schema="distribution", action="push", origin=proxy.host,
                              repository="team/app", tag=None, digest=signature, media_type=OCI_MANIFEST, size=1,
                              artifact="image", actor=None, user_agent="test", occurred_at=None)
            outcome = pipeline.handle(event)
            reads = [r for r in proxy.history() if r.method == "GET" and r.path == path]
        finally:
            ledger.close()
    assert outcome is not None and outcome.result == "ignored" and outcome.error is None
    assert reads, "the untagged push was not read at all"
    if failure is None:
        assert outcome.kind == "signature" and "Notation signature" in (outcome.reason or "")
    else:
        assert (outcome.kind, outcome.reason) == (None, USUAL_REASON.format(digest=signature))


SANDBOX_POLICY = ALERT_POLICY + 'rules:\n  - repositories: ["sandbox/**"]\n    ignore: true\n'
# id: the repository an untagged Notation signature is pushed to, which the policy never judges
NOT_READ = {"ignored-repository": "sandbox/app", "quarantine-repository": "quarantine/team/app"}


@pytest.mark.parametrize("repository", NOT_READ.values(), ids=NOT_READ.keys())
def test_untagged_pushes_where_the_policy_judges_nothing_are_not_read(
    repository: str, registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path
) -> None:
    """A repository the policy ignores, or a quarantine repository (where our own origin artifacts land by digest),
    is never read: its untagged pushes keep the usual reason without a request."""
    subject = single(builder, "linux/amd64")
    push(builder, subject, registry.host, repository, "1.0", via="raw")
    signature = push(builder, builder.notation_signature(subject), registry.host, repository, None, via="raw")
    policy = parse_policy(SANDBOX_POLICY)
    with FaultProxy(registry.host) as proxy:
        ledger = SqliteLedger(tmp_path / "ledger.db")
        try:
            pipeline = Pipeline(policy=policy, ledger=ledger, registries=registry_directory_for(
                Settings(registries=(proxy.host,), policy=policy)))
            outcome = pipeline.handle(PushEvent(
                event_id="untagged-2", schema="distribution", action="push", origin=proxy.host, repository=repository,
                tag=None, digest=signature, media_type=OCI_MANIFEST, size=1, artifact="image", actor=None,
                user_agent="test", occurred_at=None))
        finally:
            ledger.close()
        requests = proxy.history()
    assert outcome is not None and (outcome.result, outcome.kind) == ("ignored", None)
    assert outcome.reason == USUAL_REASON.format(digest=signature)
    assert requests == ()


# -- nothing quarantined, nothing deleted --------------------------------------------------------------------------


def test_quarantine_policy_never_removes_signatures_or_referrers_indexes(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder
) -> None:
    """With `on_violation: quarantine` requiring linux/amd64, a cosign `.sig` tag, the referrers tag's index and an
    untagged Notation signature are all `ignored` with their kind: nothing is moved or deleted, every tag resolves."""
    stack = guarded(QUARANTINE_POLICY)
    host = stack.registry.host
    subject_image = single(builder, "linux/amd64")
    subject = push(builder, subject_image, host, "team/app", "1.0")
    notation = builder.notation_signature(subject_image)
    pushed = {
        cosign_tag(subject, "sig"): push(builder, builder.cosign_artifact(subject_image), host, "team/app",
                                         cosign_tag(subject, "sig"), via="raw"),
        referrers_tag(subject): push(builder, builder.referrers_index([notation]), host, "team/app",
                                     referrers_tag(subject)),
    }
    untagged = notation.digest  # pushed by digest, as the referrers index's child, before the index

    expected = {cosign_tag(subject, "sig"): "signature", referrers_tag(subject): "referrers"}
    outcomes = stack.wait_until(lambda found: all(any(o.tag == tag for o in found) for tag in expected)
                                and any(o.digest == untagged and o.tag is None for o in found))
    for tag, kind in expected.items():
        [outcome] = [o for o in outcomes if o.tag == tag]
        assert (outcome.result, outcome.kind, outcome.action) == ("ignored", kind, "none"), outcome.reason
        assert outcome.preserved_as is None and outcome.affected_tags == ()
    [signature] = [o for o in outcomes if o.digest == untagged and o.tag is None]
    assert (signature.result, signature.kind) == ("ignored", "signature"), signature.reason
    assert not any(o.result in ("quarantined", "failed", "alerted") for o in outcomes), outcomes
    assert sorted(list_tags(host, "team/app")) == sorted(["1.0", *pushed])
    for tag, digest in pushed.items():
        assert fetch_manifest(host, "team/app", tag).digest == digest
    assert fetch_manifest(host, "team/app", untagged).digest == untagged
    assert list_tags(host, "quarantine/team/app") == []


# -- the sweep and `audit` ------------------------------------------------------------------------------------------


def test_audit_counts_signatures_and_referrers_as_ignored(
    registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry holding an image with its cosign signature, attestation and SBOM and a referrers index: the sweep
    counts four ignored and nothing failed, each with its kind, and `audit` exits 0."""
    subject_image = single(builder, "linux/amd64")
    subject = push(builder, subject_image, registry.host, "team/app", "1.0", via="raw")
    kinds = {
        cosign_tag(subject, "sig"): ("signature", builder.cosign_artifact(subject_image)),
        cosign_tag(subject, "att"): ("attestation", builder.cosign_artifact(subject_image,
                                                                            layer_media_type=DSSE_ENVELOPE)),
        cosign_tag(subject, "sbom"): ("sbom", builder.cosign_artifact(subject_image, layer_media_type=SPDX_JSON)),
        referrers_tag(subject): ("referrers", builder.referrers_index([builder.notation_signature(subject_image)])),
    }
    for tag, (_, artifact) in kinds.items():
        push(builder, artifact, registry.host, "team/app", tag, via="raw")
    policy = parse_policy(QUARANTINE_POLICY)
    report = Sweep(registry.host, policy=policy,
                   registries=registry_directory_for(Settings(registries=(registry.host,), policy=policy))).run()
    assert report.totals() == {"compliant": 1, "violation": 0, "ignored": 4, "failed": 0, "gone": 0}
    assert {item.tag: item.kind for item in report.items if item.status == "ignored"} == {
        tag: kind for tag, (kind, _) in kinds.items()
    }

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(QUARANTINE_POLICY)
    capsys.readouterr()
    assert main(["audit", registry.host, "--policy", str(policy_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["ignored"] == 4
