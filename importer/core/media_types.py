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
