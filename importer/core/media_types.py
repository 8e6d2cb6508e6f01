"""Media types and annotation keys of the OCI image spec, Docker's distribution formats and Helm: one source.

    from importer.core import media_types as mt
    if media_type in mt.INDEX_MEDIA_TYPES: ...

Values only; what they mean for platforms is in `importer.core.manifests` (docs/design.md, "Platforms").
"""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"  # withdrawn from OCI 1.1, still pushed

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IN_TOTO_LAYER = "application/vnd.in-toto+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ACR_HELM_CHART = "application/vnd.acr.helm.chart"

# Filesystem layers: what makes a manifest a runnable image rather than an artifact (importer.core.artifacts).
OCI_LAYER_PREFIX = "application/vnd.oci.image.layer."  # .v1.tar, .v1.tar+gzip, .v1.tar+zstd, .nondistributable…
DOCKER_LAYER_PREFIX = "application/vnd.docker.image.rootfs."  # diff.tar.gzip, foreign.diff.tar.gzip

# Signatures, attestations and SBOMs stored next to images (importer.core.artifacts; docs/design.md, "Artifacts and
# referrers"). Values as the tools write them; a media type's parameters (";version=0.2") are not part of the match.
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"  # cosign `.sig` layers
COSIGN_ARTIFACT_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"  # cosign's OCI 1.1 referrer mode
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"  # Notation: the artifactType of a signature manifest
JWS_ENVELOPE = "application/jose+json"  # a Notation signature's layer (JWS)
COSE_ENVELOPE = "application/cose"  # a Notation signature's layer (COSE)
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle+json"  # with ";version=0.1" … ";version=0.3"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"  # and its siblings …bundle.v0.N+json
SIGSTORE_BUNDLE_VERSIONED_PREFIX = "application/vnd.dev.sigstore.bundle.v"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"  # cosign `.att` layers: an in-toto statement in DSSE
IN_TOTO_PREFIX = "application/vnd.in-toto."  # application/vnd.in-toto.<predicate>+dsse and the like
SPDX_TEXT = "text/spdx"
SPDX_JSON = "text/spdx+json"
SPDX_XML = "text/spdx+xml"
SPDX_JSON_APPLICATION = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
CYCLONEDX_XML = "application/vnd.cyclonedx+xml"
SYFT_JSON = "application/vnd.syft+json"
SIGNATURE_MEDIA_TYPES = frozenset(
    {COSIGN_SIMPLESIGNING, COSIGN_ARTIFACT_SIGNATURE, NOTARY_SIGNATURE, SIGSTORE_BUNDLE, SIGSTORE_BUNDLE_V03}
)
ATTESTATION_MEDIA_TYPES = frozenset({DSSE_ENVELOPE, IN_TOTO_LAYER})
SBOM_MEDIA_TYPES = frozenset(
    {SPDX_TEXT, SPDX_JSON, SPDX_XML, SPDX_JSON_APPLICATION, CYCLONEDX, CYCLONEDX_JSON, CYCLONEDX_XML, SYFT_JSON}
)

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES = INDEX_MEDIA_TYPES | IMAGE_MANIFEST_MEDIA_TYPES
IMAGE_CONFIG_MEDIA_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
HELM_MEDIA_TYPES = frozenset({HELM_CONFIG, HELM_CHART_LAYER, ACR_HELM_CHART})
# Sent together, in this order, in Accept on every manifest request: some registries (ACR) refuse an index otherwise.
ACCEPTED_MANIFEST_MEDIA_TYPES: tuple[str, ...] = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
# Everything a manifest PUT can carry; older kinds are kept so such a push is inspected, not mistaken for a blob.
PUSHABLE_MANIFEST_MEDIA_TYPES = MANIFEST_MEDIA_TYPES | {
    DOCKER_SCHEMA1_MANIFEST,
    DOCKER_SCHEMA1_SIGNED_MANIFEST,
    OCI_ARTIFACT_MANIFEST,
    ACR_HELM_CHART,
}

# Annotations
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"  # BuildKit: "attestation-manifest"
ATTESTATION_VALUE = "attestation-manifest"
ATTESTATION_SUBJECT_ANNOTATION = "vnd.docker.reference.digest"

# The origin of a quarantined image, kept next to it (importer.core.quarantine_origin)
QUARANTINE_ORIGIN_ARTIFACT = "application/vnd.platform-guard.quarantine.v1+json"
QUARANTINE_REPOSITORY_ANNOTATION = "io.platform-guard.quarantine.repository"  # the guarded repository
QUARANTINE_TAG_ANNOTATION = "io.platform-guard.quarantine.tag"  # the tag it was pushed under
QUARANTINE_DIGEST_ANNOTATION = "io.platform-guard.quarantine.digest"  # the image's digest (the subject's)
QUARANTINE_KEPT_TAG_ANNOTATION = "io.platform-guard.quarantine.kept-tag"  # the quarantine tag it is kept under
