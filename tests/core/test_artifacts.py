"""What a pushed manifest is when it is not an image to judge (importer.core.artifacts), as tables (pure).

Each case is a manifest as the tools write it (cosign, Notation, Sigstore, SBOM attachers, the referrers tag schema,
Helm), the tag it was pushed under and, where it decides, its config; and what it must be classified as, with the
reason the outcome will carry. The cases judged as images are the guards: names must never exempt an image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from importer.core.artifacts import (
    ARTIFACT_KINDS,
    classify,
    cosign_tag_subject,
    declares_no_platform,
    is_filesystem_layer,
    kind_of_media_type,
    needs_config,
    referrer_of,
    referrers_tag_subject,
)
from importer.core.decide import Facts, decide
from importer.core.events import PushEvent, may_be_referrer
from importer.core.manifests import Manifest, parse_manifest
from importer.core.media_types import (
    COSE_ENVELOPE,
    COSIGN_SIMPLESIGNING,
    CYCLONEDX_JSON,
    CYCLONEDX_XML,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DSSE_ENVELOPE,
    HELM_CHART_LAYER,
    HELM_CONFIG,
    IN_TOTO_LAYER,
    JWS_ENVELOPE,
    NOTARY_SIGNATURE,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_V03,
    SPDX_JSON,
    SPDX_TEXT,
    SYFT_JSON,
)
from importer.core.platforms import parse
from importer.core.policy import Rule

SUBJECT = "sha256:" + "ab" * 32
SIG_TAG = f"sha256-{'ab' * 32}.sig"
ATT_TAG = f"sha256-{'ab' * 32}.att"
SBOM_TAG = f"sha256-{'ab' * 32}.sbom"
REFERRERS_TAG = f"sha256-{'ab' * 32}"
COSIGN_CONFIG = {"architecture": "", "created": "0001-01-01T00:00:00Z",
                 "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                 "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}, "config": {}}
ARM64_CONFIG = {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
_counter = iter(range(1, 10_000))


def descriptor(media_type: str, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": f"sha256:{next(_counter):064x}", "size": 10, **extra}


def manifest(config_type: str, *layer_types: str, media_type: str = OCI_MANIFEST, artifact_type: str | None = None,
             subject: str | None = None) -> Manifest:
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        body["artifactType"] = artifact_type
    body["config"] = descriptor(config_type)
    body["layers"] = [descriptor(layer_type) for layer_type in layer_types]
    if subject is not None:
        body["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 500}
    return parse_manifest(json.dumps(body).encode())


def index(*entries: dict[str, object], media_type: str = OCI_INDEX, artifact_type: str | None = None,
          subject: str | None = None) -> Manifest:
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)}
    if artifact_type is not None:
        body["artifactType"] = artifact_type
    if subject is not None:
        body["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 500}
    return parse_manifest(json.dumps(body).encode())


def referrer_entry(artifact_type: str) -> dict[str, object]:
    return descriptor(OCI_MANIFEST, artifactType=artifact_type)


def image_entry(platform: str) -> dict[str, object]:
    os_name, architecture = platform.split("/")
    return descriptor(OCI_MANIFEST, platform={"os": os_name, "architecture": architecture})


@dataclass(frozen=True)
class Case:
    id: str
    manifest: Manifest
    tag: str | None
    config: Mapping[str, object] | None
    kind: str | None  # None: an image or index to judge
    reason: str = ""  # the whole reason, when given
    says: tuple[str, ...] = field(default=())  # fragments of the reason


NOTATION = manifest(OCI_EMPTY, JWS_ENVELOPE, artifact_type=NOTARY_SIGNATURE, subject=SUBJECT)
CASES = [
    # cosign's tag scheme: an image config with "os": "" and layers that are not filesystems
    Case("cosign-signature", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), SIG_TAG, COSIGN_CONFIG, "signature",
         reason=f"cosign signature ({COSIGN_SIMPLESIGNING}) of {SUBJECT}, not a runnable image"),
    Case("cosign-signature-docker-media-types",
         manifest(DOCKER_CONFIG, COSIGN_SIMPLESIGNING, media_type=DOCKER_MANIFEST), SIG_TAG, COSIGN_CONFIG, "signature",
         says=("cosign signature", SUBJECT)),
    Case("cosign-signature-under-another-tag", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), "latest", COSIGN_CONFIG,
         "signature", reason=f"cosign signature ({COSIGN_SIMPLESIGNING}), not a runnable image"),
    Case("cosign-attestation", manifest(OCI_CONFIG, DSSE_ENVELOPE, DSSE_ENVELOPE), ATT_TAG, COSIGN_CONFIG,
         "attestation", reason=f"cosign attestation ({DSSE_ENVELOPE}) of {SUBJECT}, not a runnable image"),
    Case("dsse-attestation-without-a-cosign-tag", manifest(OCI_CONFIG, DSSE_ENVELOPE), "provenance", COSIGN_CONFIG,
         "attestation", reason=f"in-toto attestation ({DSSE_ENVELOPE}), not a runnable image"),
    Case("cosign-sbom-spdx-json", manifest(OCI_CONFIG, SPDX_JSON), SBOM_TAG, COSIGN_CONFIG, "sbom",
         reason=f"cosign SBOM ({SPDX_JSON}) of {SUBJECT}, not a runnable image"),
    Case("cosign-sbom-spdx-text", manifest(OCI_CONFIG, SPDX_TEXT), SBOM_TAG, COSIGN_CONFIG, "sbom", says=(SPDX_TEXT,)),
    Case("cosign-sbom-cyclonedx-xml", manifest(OCI_CONFIG, CYCLONEDX_XML), SBOM_TAG, COSIGN_CONFIG, "sbom",
         says=(CYCLONEDX_XML, SUBJECT)),
    Case("cyclonedx-sbom-without-a-cosign-tag", manifest(OCI_CONFIG, CYCLONEDX_JSON), "sbom", COSIGN_CONFIG, "sbom",
         reason=f"CycloneDX SBOM ({CYCLONEDX_JSON}), not a runnable image"),
    Case("syft-sbom", manifest(OCI_CONFIG, SYFT_JSON), SBOM_TAG, COSIGN_CONFIG, "sbom", says=(SYFT_JSON,)),
    Case("cosign-tag-names-the-kind-of-an-unknown-layer", manifest(OCI_CONFIG, "application/octet-stream"), SIG_TAG,
         COSIGN_CONFIG, "signature",
         reason=f"cosign signature (application/octet-stream) of {SUBJECT}, not a runnable image"),
    Case("empty-platform-unknown-layer-is-an-artifact", manifest(OCI_CONFIG, "application/octet-stream"), "x",
         COSIGN_CONFIG, "artifact", reason="not a runnable image: artifact of type application/octet-stream"),
    Case("mixed-signature-and-sbom-layers-are-an-artifact", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING, SPDX_JSON), "x",
         COSIGN_CONFIG, "artifact"),
    Case("config-with-no-platform-keys-and-a-signature-layer", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), SIG_TAG,
         {"rootfs": {"type": "layers"}}, "signature"),
    Case("buildkit-attestation-manifest-on-its-own", manifest(OCI_CONFIG, IN_TOTO_LAYER), "att",
         {"os": "unknown", "architecture": "unknown"}, "attestation", says=("in-toto attestation", IN_TOTO_LAYER)),
    # OCI 1.1 artifacts: artifactType, the empty config, subject
    Case("notation-signature-jws", NOTATION, None, None, "signature",
         reason=f"Notation signature ({NOTARY_SIGNATURE}) of {SUBJECT}, not a runnable image"),
    Case("notation-signature-cose", manifest(OCI_EMPTY, COSE_ENVELOPE, artifact_type=NOTARY_SIGNATURE, subject=SUBJECT),
         "tagged", None, "signature", says=("Notation signature",)),
    Case("notation-signature-before-artifact-type", manifest(NOTARY_SIGNATURE, JWS_ENVELOPE, subject=SUBJECT), None,
         None, "signature", says=("Notation signature", SUBJECT)),
    Case("sigstore-bundle-v0.3", manifest(OCI_EMPTY, SIGSTORE_BUNDLE_V03, artifact_type=SIGSTORE_BUNDLE_V03,
                                          subject=SUBJECT), None, None, "signature",
         reason=f"Sigstore bundle signature ({SIGSTORE_BUNDLE_V03}) of {SUBJECT}, not a runnable image"),
    Case("sigstore-bundle-with-a-version-parameter",
         manifest(OCI_EMPTY, "application/vnd.dev.sigstore.bundle+json;version=0.2", subject=SUBJECT), None, None,
         "signature", says=("Sigstore bundle signature",)),
    Case("in-toto-predicate-artifact-type",
         manifest(OCI_EMPTY, "application/json", artifact_type="application/vnd.in-toto.provenance+dsse"), None, None,
         "attestation"),
    Case("spdx-artifact-with-subject", manifest(OCI_EMPTY, SPDX_JSON, artifact_type=SPDX_JSON, subject=SUBJECT), None,
         None, "sbom", reason=f"SPDX SBOM ({SPDX_JSON}) of {SUBJECT}, not a runnable image"),
    Case("unknown-artifact-with-subject", manifest(OCI_EMPTY, "application/json", artifact_type="application/x.report",
                                                   subject=SUBJECT), None, None, "artifact",
         reason=f"not a runnable image: artifact of type application/x.report, refers to {SUBJECT}"),
    Case("helm-chart-as-today", manifest(HELM_CONFIG, HELM_CHART_LAYER), "1.0.0", None, "artifact",
         reason=f"not a runnable image: artifact of type {HELM_CONFIG}"),
    Case("image-config-with-artifact-type-and-no-layers", manifest(OCI_CONFIG, artifact_type="application/x.thing"),
         "x", {"os": ""}, "artifact", says=("application/x.thing",)),
    # the referrers tag schema
    Case("referrers-index-of-two-notation-signatures",
         index(referrer_entry(NOTARY_SIGNATURE), referrer_entry(NOTARY_SIGNATURE)), REFERRERS_TAG, None, "referrers",
         reason=f"referrers index of {SUBJECT} listing 2 signatures, not a runnable image"),
    Case("referrers-index-of-everything",
         index(referrer_entry(NOTARY_SIGNATURE), referrer_entry(SPDX_JSON), referrer_entry(DSSE_ENVELOPE),
               referrer_entry("application/x.report"), referrer_entry(SIGSTORE_BUNDLE_V03)), REFERRERS_TAG, None,
         "referrers", says=("listing 2 signatures, 1 attestation, 1 SBOM, 1 other artifact",)),
    Case("empty-referrers-index", index(), REFERRERS_TAG, None, "referrers",
         reason=f"referrers index of {SUBJECT} listing nothing, not a runnable image"),
    Case("referrers-index-of-a-sha512-subject", index(referrer_entry(NOTARY_SIGNATURE)), f"sha512-{'cd' * 32}", None,
         "referrers", reason="referrers index listing 1 signature, not a runnable image"),
    Case("index-with-artifact-type", index(image_entry("linux/arm64"), artifact_type="application/x.bundle"), "1.0",
         None, "artifact", reason="not a runnable image: artifact of type application/x.bundle"),
    Case("index-with-subject", index(referrer_entry(SPDX_JSON), subject=SUBJECT), "1.0", None, "artifact",
         says=(f"refers to {SUBJECT}",)),
    # judged: names and marks never exempt what its content says is an image
    Case("arm64-image-under-a-sig-tag", manifest(OCI_CONFIG, OCI_LAYER), SIG_TAG, ARM64_CONFIG, None),
    Case("arm64-docker-image-under-an-sbom-tag", manifest(DOCKER_CONFIG, DOCKER_LAYER, media_type=DOCKER_MANIFEST),
         SBOM_TAG, ARM64_CONFIG, None),
    Case("arm64-image-with-a-signature-layer-under-a-sig-tag", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), SIG_TAG,
         ARM64_CONFIG, None),
    Case("arm64-image-with-artifact-type-and-subject",
         manifest(OCI_CONFIG, OCI_LAYER, artifact_type=NOTARY_SIGNATURE, subject=SUBJECT), None, ARM64_CONFIG, None),
    Case("wasm-image-declares-its-platform", manifest(OCI_CONFIG, "application/vnd.wasm.content.layer.v1+wasm"), "1",
         {"os": "wasip1", "architecture": "wasm"}, None),
    Case("empty-platform-over-filesystem-layers-is-a-broken-image", manifest(OCI_CONFIG, OCI_LAYER), SIG_TAG,
         COSIGN_CONFIG, None),
    Case("no-platform-and-no-layers-is-a-broken-image", manifest(OCI_CONFIG), "broken", {"rootfs": {}}, None),
    Case("mistyped-platform-is-a-broken-image-not-an-artifact", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), SIG_TAG,
         {"os": "", "architecture": 64}, None),
    Case("index-of-images-under-a-referrers-tag", index(image_entry("linux/arm64")), REFERRERS_TAG, None, None),
    Case("index-mixing-an-image-and-a-referrer-under-a-referrers-tag",
         index(referrer_entry(NOTARY_SIGNATURE), image_entry("linux/arm64")), REFERRERS_TAG, None, None),
    Case("entries-with-artifact-type-and-a-platform-under-a-referrers-tag",
         index({**referrer_entry(OCI_CONFIG), "platform": {"os": "linux", "architecture": "arm64"}}), REFERRERS_TAG,
         None, None),
    Case("referrers-shaped-index-under-an-ordinary-tag", index(referrer_entry(NOTARY_SIGNATURE)), "1.0", None, None),
    Case("referrers-shaped-index-pushed-by-digest", index(referrer_entry(NOTARY_SIGNATURE)), None, None, None),
    Case("docker-manifest-list-of-images", index(image_entry("linux/amd64"), media_type=DOCKER_MANIFEST_LIST),
         REFERRERS_TAG, None, None),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_classify(case: Case) -> None:
    """Content decides what a manifest is; a cosign or referrers tag only names a subject or corroborates a kind."""
    found = classify(case.manifest, tag=case.tag, config=case.config)
    if case.kind is None:
        assert found is None, found
        return
    assert found is not None and found.kind == case.kind, found
    assert found.kind in ARTIFACT_KINDS
    if case.reason:
        assert found.reason == case.reason
    for fragment in case.says:
        assert fragment in found.reason
    assert "{" not in found.reason


def test_a_manifest_that_needs_its_config_is_not_classified_without_it() -> None:
    """Telling a cosign signature from a runnable image needs the config: classify() refuses to guess."""
    signature = manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING)
    assert needs_config(signature)
    with pytest.raises(ValueError, match="config must be read"):
        classify(signature, tag=SIG_TAG)


NEEDS_CONFIG = [
    ("cosign-signature", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), True),
    ("image-with-filesystem-layers", manifest(OCI_CONFIG, OCI_LAYER, COSIGN_SIMPLESIGNING), False),
    ("bare-image-config-no-layers", manifest(OCI_CONFIG), False),
    ("image-config-no-layers-with-artifact-type", manifest(OCI_CONFIG, artifact_type="application/x"), True),
    ("notation-signature-empty-config", NOTATION, False),
    ("helm-chart", manifest(HELM_CONFIG, HELM_CHART_LAYER), False),
    ("index", index(), False),
]


@pytest.mark.parametrize(("_", "parsed", "needed"), NEEDS_CONFIG, ids=[case[0] for case in NEEDS_CONFIG])
def test_needs_config_only_where_the_config_decides(_: str, parsed: Manifest, needed: bool) -> None:
    """Only an image config over layers that are not filesystems needs reading to tell; inspection reads an image's
    config anyway, so the config is read at most once."""
    assert needs_config(parsed) is needed


REFERRERS_BY_MANIFEST = [
    ("notation-signature", NOTATION, "signature", f"Notation signature ({NOTARY_SIGNATURE}) of {SUBJECT}"),
    ("sbom-artifact", manifest(OCI_EMPTY, SPDX_JSON, artifact_type=SPDX_JSON, subject=SUBJECT), "sbom", "SPDX SBOM"),
    ("artifact-without-subject", manifest(OCI_EMPTY, "application/json", artifact_type="application/x"), "artifact",
     "artifact of type application/x"),
    ("image-config-with-subject", manifest(OCI_CONFIG, OCI_LAYER, subject=SUBJECT), "artifact", f"refers to {SUBJECT}"),
    ("signature-layers-only", manifest(OCI_CONFIG, COSIGN_SIMPLESIGNING), "signature", "cosign signature"),
    ("buildkit-attestation-child", manifest(OCI_CONFIG, IN_TOTO_LAYER, IN_TOTO_LAYER), "attestation",
     "in-toto attestation"),
    ("index-with-subject", index(subject=SUBJECT), "artifact", f"refers to {SUBJECT}"),
    ("child-image-of-a-multi-arch-push", manifest(OCI_CONFIG, OCI_LAYER), None, ""),
    ("image-without-layers", manifest(OCI_CONFIG), None, ""),
    ("nested-index", index(image_entry("linux/amd64")), None, ""),
    ("referrers-shaped-index-without-its-tag", index(referrer_entry(NOTARY_SIGNATURE)), None, ""),
]


@pytest.mark.parametrize(("_", "parsed", "kind", "says"), REFERRERS_BY_MANIFEST,
                         ids=[case[0] for case in REFERRERS_BY_MANIFEST])
def test_an_untagged_push_is_named_by_its_manifest_alone(_: str, parsed: Manifest, kind: str | None,
                                                         says: str) -> None:
    """referrer_of needs no config and no tag: `subject`, `artifactType`, a non-image config or only signature,
    attestation and SBOM layers; a plain child image of a multi-arch push is not one."""
    found = referrer_of(parsed)
    assert (found.kind if found is not None else None) == kind
    if found is not None:
        assert says in found.reason


MEDIA_TYPE_KINDS = [
    (COSIGN_SIMPLESIGNING, "signature"),
    (NOTARY_SIGNATURE, "signature"),
    (SIGSTORE_BUNDLE_V03, "signature"),
    ("application/vnd.dev.sigstore.bundle.v0.4+json", "signature"),
    ("application/vnd.dev.sigstore.bundle+json;version=0.3", "signature"),
    ("Application/Vnd.Dev.Sigstore.Bundle+JSON; version=0.1", "signature"),
    (DSSE_ENVELOPE, "attestation"),
    (IN_TOTO_LAYER, "attestation"),
    ("application/vnd.in-toto.spdx+dsse", "attestation"),
    (SPDX_TEXT, "sbom"),
    (SPDX_JSON, "sbom"),
    ("text/spdx+xml", "sbom"),
    ("application/spdx+json", "sbom"),
    ("application/vnd.cyclonedx", "sbom"),
    (CYCLONEDX_JSON, "sbom"),
    (CYCLONEDX_XML, "sbom"),
    (SYFT_JSON, "sbom"),
    (JWS_ENVELOPE, None),
    (OCI_CONFIG, None),
    (OCI_LAYER, None),
    ("application/vnd.dev.sigstore.bundle.v0.3+xml", None),
    ("", None),
]


@pytest.mark.parametrize(("media_type", "kind"), MEDIA_TYPE_KINDS,
                         ids=[case[0] or "empty" for case in MEDIA_TYPE_KINDS])
def test_kind_of_media_type(media_type: str, kind: str | None) -> None:
    """Known signature, attestation and SBOM types, parameters and case aside; an envelope type alone says nothing."""
    assert kind_of_media_type(media_type) == kind


LAYERS = [
    (OCI_LAYER, True),
    ("application/vnd.oci.image.layer.v1.tar", True),
    ("application/vnd.oci.image.layer.v1.tar+zstd", True),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", True),
    (DOCKER_LAYER, True),
    ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", True),
    (COSIGN_SIMPLESIGNING, False),
    (HELM_CHART_LAYER, False),
    ("application/vnd.wasm.content.layer.v1+wasm", False),
]


@pytest.mark.parametrize(("media_type", "filesystem"), LAYERS, ids=[case[0] for case in LAYERS])
def test_is_filesystem_layer(media_type: str, filesystem: bool) -> None:
    assert is_filesystem_layer(media_type) is filesystem


PLATFORMS = [
    ("cosign-empty-strings", {"os": "", "architecture": ""}, True),
    ("absent", {"rootfs": {}}, True),
    ("buildkit-unknown", {"os": "unknown", "architecture": "unknown"}, True),
    ("half-empty", {"os": "linux", "architecture": ""}, True),
    ("linux-arm64", {"os": "linux", "architecture": "arm64"}, False),
    ("mistyped", {"os": "", "architecture": 64}, False),
]


@pytest.mark.parametrize(("_", "config", "none"), PLATFORMS, ids=[case[0] for case in PLATFORMS])
def test_declares_no_platform(_: str, config: dict[str, object], none: bool) -> None:
    assert declares_no_platform(config) is none


TAGS = [
    (SIG_TAG, (SUBJECT, "signature"), REFERRERS_TAG),
    (ATT_TAG, (SUBJECT, "attestation"), None),
    (SBOM_TAG, (SUBJECT, "sbom"), None),
    (REFERRERS_TAG, None, SUBJECT),
    (f"sha512-{'cd' * 32}", None, ""),
    (f"sha256-{'AB' * 32}.sig", None, None),
    (f"sha256-{'ab' * 31}.sig", None, None),
    (f"{SIG_TAG}.bak", None, None),
    ("1.0", None, None),
    (None, None, None),
]


@pytest.mark.parametrize(("tag", "cosign", "referrers"), TAGS, ids=[str(case[0]) for case in TAGS])
def test_tag_schemes(tag: str | None, cosign: tuple[str, str] | None, referrers: str | None) -> None:
    """cosign's `sha256-<hex>.sig|att|sbom` and the referrers tag `<alg>-<hex>`, exactly (lower-case hex, 64 digits)."""
    assert cosign_tag_subject(tag) == cosign
    assert referrers_tag_subject(tag) == (None if tag == SIG_TAG else referrers)


def test_decide_ignores_an_artifact_with_its_own_reason() -> None:
    """The verdict of a signature is `ignored`, action none, whatever the rule says to do with violations."""
    artifact = classify(NOTATION, tag=None)
    assert artifact is not None
    facts = Facts("team/app", "sha256:" + "f" * 64, OCI_MANIFEST, artifact.kind, artifact_type=artifact.media_type,
                  artifact=artifact)
    verdict = decide(facts, Rule(require=(parse("linux/amd64"),), on_violation="quarantine"))
    assert (verdict.verdict, verdict.action, verdict.reason) == ("ignored", "none", artifact.reason)


def _event(tag: str | None, media_type: str | None, action: str = "push") -> PushEvent:
    return PushEvent(event_id="e", schema="distribution", action=action, origin="r", repository="team/app", tag=tag,
                     digest=SUBJECT, media_type=media_type, size=1, artifact="image", actor=None, user_agent=None,
                     occurred_at=None)


MAY_BE_REFERRER = [
    ("untagged-oci-manifest", _event(None, OCI_MANIFEST), True),
    ("untagged-oci-index", _event(None, OCI_INDEX), True),
    ("untagged-oci-manifest-with-parameters", _event(None, f"{OCI_MANIFEST}; charset=utf-8"), True),
    ("untagged-docker-manifest", _event(None, DOCKER_MANIFEST), False),
    ("untagged-docker-list", _event(None, DOCKER_MANIFEST_LIST), False),
    ("untagged-without-media-type", _event(None, None), False),
    ("tagged-oci-manifest", _event("1.0", OCI_MANIFEST), False),
    ("delete", _event(None, OCI_MANIFEST, action="delete"), False),
]


@pytest.mark.parametrize(("_", "event", "worth_a_read"), MAY_BE_REFERRER, ids=[case[0] for case in MAY_BE_REFERRER])
def test_which_untagged_pushes_are_worth_one_read(_: str, event: PushEvent, worth_a_read: bool) -> None:
    """Only OCI media types can carry `subject` or `artifactType`: Docker ones are never read."""
    assert may_be_referrer(event) is worth_a_read
