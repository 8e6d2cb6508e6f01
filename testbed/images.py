"""Tiny, deterministic test images built in code as an OCI image layout on disk.

    builder = ImageBuilder(tmp_path / "layout")
    amd64 = builder.image("linux/amd64")
    arm64 = builder.image("linux/arm64/v8", seed="v2")
    index = builder.index([amd64, arm64, builder.attestation(amd64)])
    push(builder, index, registry.host, "team/app", "1.0")      # testbed/push.py

Every blob lands in `<root>/blobs/sha256/<hex>` and every call returns the `Descriptor` to reference it with
(for an image: with its platform, ready to go into an index). The same arguments give the same bytes and
digests on every run: tar entries are sorted, owned by 0:0 with mtime 0, gzip headers carry mtime 0 and no
name, and JSON is written compactly with a fixed key order. Layer contents are derived from the platform
string, the seed and the layer number, so different platforms or seeds never share a digest.

Platform strings are used exactly as written ("linux/aarch64" stays "aarch64"): the point is to feed
un-normalised and inconsistent inputs to the code under test; `raw_manifest` and `add_blob` store any bytes
for bad-input cases. `single` and `multi` at the bottom build the common shapes in one line; `children_of`
reads an index's entries back as descriptors.

Signatures and other referrers, shaped as the tools push them (docs/design.md, "Artifacts and referrers"):

    sig = builder.cosign_artifact(image)                                 # cosign sign: tag cosign_tag(image, "sig")
    att = builder.cosign_artifact(image, layer_media_type=DSSE_ENVELOPE) # cosign attest: tag cosign_tag(image, "att")
    notation = builder.notation_signature(image)                         # notation sign: pushed by digest
    listing = builder.referrers_index([notation])                        # the referrers tag schema's index:
                                                                         #   push it under referrers_tag(image)
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.core.media_types import (  # noqa: F401  (re-exported for the tests that build images)
    ATTESTATION_ANNOTATION,
    ATTESTATION_SUBJECT_ANNOTATION,
    ATTESTATION_VALUE,
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
    IMAGE_MANIFEST_MEDIA_TYPES,
    IN_TOTO_LAYER,
    INDEX_MEDIA_TYPES,
    JWS_ENVELOPE,
    NOTARY_SIGNATURE,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    REF_NAME_ANNOTATION,
    SIGSTORE_BUNDLE_V03,
    SPDX_JSON,
    SPDX_TEXT,
)

EMPTY_JSON = b"{}"
# What cosign writes into every signature, attestation and SBOM image's config: no platform at all, on purpose.
COSIGN_CREATED = "0001-01-01T00:00:00Z"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
NOTATION_THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what an index entry (or a manifest's config/layer entry) says about a blob."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = None

    def __hash__(self) -> int:  # the dict fields are unhashable, so hash the scalar ones (equal stays equal)
        return hash((self.media_type, self.digest, self.size, self.artifact_type))

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in a manifest or index, optional fields only when set."""
        entry: dict[str, Any] = {"mediaType": self.media_type}
        if self.artifact_type is not None:
            entry["artifactType"] = self.artifact_type
        entry["digest"] = self.digest
        entry["size"] = self.size
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        if self.platform is not None:
            entry["platform"] = dict(self.platform)
        return entry

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def hex(self) -> str:
        """The digest without its `sha256:` prefix."""
        return self.digest.split(":", 1)[1]


def sha256_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Compact JSON in the key order given: the same document always gives the same bytes."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def platform_json(platform: str, os_version: str | None = None) -> dict[str, str]:
    """`"linux/arm/v7"` → `{"architecture": "arm", "os": "linux", "variant": "v7"}`, values kept as written."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} is not os/architecture[/variant]")
    result = {"architecture": parts[1], "os": parts[0]}
    if os_version is not None:
        result["os.version"] = os_version
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


def deterministic_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of `files` (path → content) plus their parent directories, sorted, 0:0, mtime 0."""
    directories = {str(Path(path).parents[index]) for path in files for index in range(len(Path(path).parts) - 1)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(directories | set(files)):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in files:
                info.mode = 0o644
                info.size = len(files[name])
                archive.addfile(info, io.BytesIO(files[name]))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                archive.addfile(info)
    return buffer.getvalue()


def deterministic_gzip(content: bytes) -> bytes:
    """gzip with mtime 0 and no file name in the header, so equal input gives equal output."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as stream:
        stream.write(content)
    return buffer.getvalue()


def filler(label: str, size: int) -> bytes:
    """`size` bytes derived from `label` only: distinct labels give distinct contents."""
    chunks: list[bytes] = []
    counter = 0
    while sum(map(len, chunks)) < size:
        chunks.append(hashlib.sha256(f"{label}#{counter}".encode()).hexdigest().encode())
        counter += 1
    return b"".join(chunks)[:size]


class ImageBuilder:
    """One OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) that images are built into.

    Opening an existing layout keeps what is in it. Only `tag` changes `index.json`; everything else only adds blobs.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        layout_file = self.root / "oci-layout"
        if not layout_file.exists():
            layout_file.write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        self.index_path = self.root / "index.json"
        if not self.index_path.exists():
            self._write_layout_index([])

    # -- blobs -------------------------------------------------------------------------------------------

    def add_blob(self, content: bytes, media_type: str) -> Descriptor:
        """Store any bytes as a blob (a config that is not JSON, an odd layer…) and describe them."""
        digest = sha256_digest(content)
        path = self.blobs_dir / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(content)
        return Descriptor(media_type=media_type, digest=digest, size=len(content))

    def blob(self, digest: str) -> bytes:
        """The bytes of a blob in this layout."""
        if not self.has_blob(digest):
            raise KeyError(f"blob {digest!r} is not in the layout at {self.root}")
        return (self.blobs_dir / digest.removeprefix("sha256:")).read_bytes()

    def has_blob(self, digest: str) -> bool:
        algorithm, _, hex_digest = digest.partition(":")
        well_formed = algorithm == "sha256" and len(hex_digest) == 64 and set(hex_digest) <= set("0123456789abcdef")
        return well_formed and (self.blobs_dir / hex_digest).is_file()

    def document(self, descriptor: Descriptor) -> dict[str, Any]:
        """A manifest, index or config blob parsed as JSON."""
        return json.loads(self.blob(descriptor.digest))

    # -- images ------------------------------------------------------------------------------------------

    def image(
        self,
        platform: str,
        *,
        layers: int = 1,
        seed: str = "",
        config_platform: str | None = None,
        os_version: str | None = None,
        docker: bool = False,
        layer_size: int = 64,
    ) -> Descriptor:
        """A runnable image for `platform` ("linux/arm64/v8", "windows/amd64"), returned with that platform.

        `config_platform` makes the config say something else than the index entry (an "inconsistent" child);
        `os_version` sets `os.version` in both; `docker=True` uses Docker v2 media types for manifest,
        config and layers.
        """
        if layers < 0:
            raise ValueError(f"layers={layers} for {platform!r}: an image cannot have a negative number of layers")
        entry_platform = platform_json(platform, os_version)
        config_platform_json = platform_json(config_platform or platform, os_version)
        layer_type = DOCKER_LAYER if docker else OCI_LAYER
        layer_descriptors: list[Descriptor] = []
        diff_ids: list[str] = []
        for number in range(layers):
            label = f"{platform}|{os_version or ''}|{seed}|layer {number}"
            tar = deterministic_tar({f"platform-guard/layer-{number}.txt": filler(label, layer_size)})
            diff_ids.append(sha256_digest(tar))
            layer_descriptors.append(self.add_blob(deterministic_gzip(tar), layer_type))
        config_document = {
            **{key: config_platform_json[key] for key in ("architecture", "os", "os.version", "variant")
               if key in config_platform_json},
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        config = self.add_blob(canonical_json(config_document), DOCKER_CONFIG if docker else OCI_CONFIG)
        manifest = self._manifest(DOCKER_MANIFEST if docker else OCI_MANIFEST, config, layer_descriptors)
        return dataclasses.replace(manifest, platform=entry_platform)

    def attestation(
        self, subject: Descriptor, *, predicate_type: str = "https://slsa.dev/provenance/v0.2"
    ) -> Descriptor:
        """A BuildKit-style attestation manifest for `subject`, as BuildKit lists it in an index.

        Entry platform `unknown/unknown`, annotations `vnd.docker.reference.type: attestation-manifest` and
        `vnd.docker.reference.digest: <subject>`; config an image config for unknown/unknown; one in-toto layer.
        """
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": [{"name": "_", "digest": {"sha256": subject.hex}}],
            "predicate": {"builder": {"id": "platform-guard-tests"}},
        }
        layer = self.add_blob(canonical_json(statement), IN_TOTO_LAYER)
        layer = dataclasses.replace(layer, annotations={"in-toto.io/predicate-type": predicate_type})
        config_document = {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }
        config = self.add_blob(canonical_json(config_document), OCI_CONFIG)
        manifest = self._manifest(OCI_MANIFEST, config, [layer])
        return dataclasses.replace(
            manifest,
            platform={"architecture": "unknown", "os": "unknown"},
            annotations={ATTESTATION_SUBJECT_ANNOTATION: subject.digest, ATTESTATION_ANNOTATION: ATTESTATION_VALUE},
        )

    def without_platform(self, child: Descriptor) -> Descriptor:
        """The same child, listed without a `platform` field."""
        return dataclasses.replace(child, platform=None)

    def artifact(
        self,
        artifact_type: str = "application/vnd.example.sbom+json",
        *,
        subject: Descriptor | None = None,
        seed: str = "",
        layer_media_type: str = "application/json",
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """An OCI 1.1 artifact: `artifactType`, the empty config, one small layer, and `subject` and manifest
        `annotations` when given. The descriptor returned carries the artifactType and those annotations, as a
        referrers listing shows them."""
        layer = self.add_blob(canonical_json({"artifactType": artifact_type, "seed": seed}), layer_media_type)
        config = self.add_blob(EMPTY_JSON, OCI_EMPTY)
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {**config.to_json(), "data": base64.b64encode(EMPTY_JSON).decode()},
            "layers": [layer.to_json()],
        }
        if subject is not None:
            document["subject"] = Descriptor(subject.media_type, subject.digest, subject.size).to_json()
        if annotations:
            document["annotations"] = dict(annotations)
        manifest = self.add_blob(canonical_json(document), OCI_MANIFEST)
        return dataclasses.replace(manifest, artifact_type=artifact_type,
                                   annotations=dict(annotations) if annotations else None)

    def cosign_artifact(
        self,
        subject: Descriptor,
        *,
        layer_media_type: str = COSIGN_SIMPLESIGNING,
        payload: bytes | None = None,
        docker: bool = False,
        seed: str = "",
    ) -> Descriptor:
        """What cosign pushes under `cosign_tag(subject, …)`: an image manifest whose config is an image config
        with `"os": ""` and `"architecture": ""`, and one layer that is not a filesystem.

        The layer type says what it is: `COSIGN_SIMPLESIGNING` (`cosign sign`, tag suffix `sig`; the default),
        `DSSE_ENVELOPE` (`cosign attest`, `att`), an SBOM type such as `SPDX_JSON` (`cosign attach sbom`, `sbom`).
        `payload` replaces the layer's default content (a simple-signing document, a DSSE envelope or a small SBOM
        naming the subject); `docker=True` writes Docker v2 media types for the manifest and config, as older
        cosign releases did. No key signs anything here: these are shapes, for telling them apart.
        """
        if payload is None:
            payload = self._cosign_payload(subject, layer_media_type, seed)
        layer = self.add_blob(payload, layer_media_type)
        if layer_media_type == COSIGN_SIMPLESIGNING:
            signature = base64.b64encode(hashlib.sha256(payload + seed.encode()).digest()).decode()
            layer = dataclasses.replace(layer, annotations={COSIGN_SIGNATURE_ANNOTATION: signature})
        elif layer_media_type == DSSE_ENVELOPE:
            layer = dataclasses.replace(layer, annotations={COSIGN_SIGNATURE_ANNOTATION: "",
                                                            "predicateType": "https://slsa.dev/provenance/v0.2"})
        config_document = {
            "architecture": "",
            "created": COSIGN_CREATED,
            "history": [{"created": COSIGN_CREATED}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            "config": {},
        }
        config = self.add_blob(canonical_json(config_document), DOCKER_CONFIG if docker else OCI_CONFIG)
        return self._manifest(DOCKER_MANIFEST if docker else OCI_MANIFEST, config, [layer])

    @staticmethod
    def _cosign_payload(subject: Descriptor, layer_media_type: str, seed: str) -> bytes:
        if layer_media_type == COSIGN_SIMPLESIGNING:
            return canonical_json({
                "critical": {"identity": {"docker-reference": "registry.example/team/app"},
                             "image": {"docker-manifest-digest": subject.digest},
                             "type": "cosign container image signature"},
                "optional": {"seed": seed} if seed else None,
            })
        if layer_media_type == DSSE_ENVELOPE:
            statement = canonical_json({
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://slsa.dev/provenance/v0.2",
                "subject": [{"name": "registry.example/team/app", "digest": {"sha256": subject.hex}}],
                "predicate": {"builder": {"id": f"platform-guard-tests{seed}"}},
            })
            return canonical_json({"payloadType": "application/vnd.in-toto+json",
                                   "payload": base64.b64encode(statement).decode(),
                                   "signatures": [{"keyid": "", "sig": ""}]})
        if layer_media_type.endswith("xml"):
            return f'<bom xmlns="http://cyclonedx.org/schema/bom/1.5" serialNumber="{subject.digest}{seed}"/>'.encode()
        if layer_media_type == SPDX_TEXT:
            return f"SPDXVersion: SPDX-2.3\nDocumentName: {subject.digest}{seed}\n".encode()
        return canonical_json({"spdxVersion": "SPDX-2.3", "name": subject.digest, "seed": seed})

    def notation_signature(
        self, subject: Descriptor, *, envelope: str = JWS_ENVELOPE, seed: str = ""
    ) -> Descriptor:
        """What `notation sign` pushes by digest: an OCI manifest with `artifactType`
        `application/vnd.cncf.notary.signature`, the empty config, one envelope layer (`JWS_ENVELOPE` or
        `COSE_ENVELOPE`) and `subject` the signed manifest. Unsigned: a shape, not a signature."""
        thumbprint = hashlib.sha256(f"test certificate {seed}".encode()).hexdigest()
        return self.artifact(NOTARY_SIGNATURE, subject=subject, seed=seed, layer_media_type=envelope,
                             annotations={NOTATION_THUMBPRINT_ANNOTATION: json.dumps([thumbprint])})

    def referrers_index(self, referrers: Sequence[Descriptor]) -> Descriptor:
        """The OCI referrers tag schema's index (push it under `referrers_tag(subject)`): one entry per referrer,
        each with its `artifactType` (and annotations), as registries without the referrers API are given them.
        An empty list gives the empty index a registry is left with when the last referrer goes."""
        for referrer in referrers:
            if referrer.artifact_type is None:
                raise ValueError(f"{referrer.digest} has no artifactType: a referrers index lists artifacts only")
        return self.index(referrers)

    def index(
        self,
        children: Sequence[Descriptor],
        *,
        docker: bool = False,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """An OCI image index (or, with `docker=True`, a Docker manifest list) of `children`, in the order given.

        Children are listed exactly as described, so an index may hold other indexes, entries without a
        platform, or entries whose platform disagrees with the child's config.
        """
        media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [child.to_json() for child in children],
        }
        if annotations:
            document["annotations"] = dict(annotations)
        return self.add_blob(canonical_json(document), media_type)

    def helm_chart(
        self,
        name: str,
        version: str,
        *,
        files: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        app_version: str | None = None,
    ) -> Descriptor:
        """A Helm chart pushed the way `helm push` does: Helm config (Chart.yaml as JSON) and one chart tarball.

        The tarball holds `<name>/Chart.yaml`, `<name>/values.yaml` and `files` (paths relative to the chart).
        """
        chart = {"apiVersion": "v2", "name": name, "version": version, "description": f"Test chart {name}",
                 "type": "application"}
        if app_version is not None:
            chart["appVersion"] = app_version
        chart_yaml = "".join(f"{key}: {json.dumps(value)}\n" for key, value in chart.items())
        chart_files = {f"{name}/Chart.yaml": chart_yaml.encode(), f"{name}/values.yaml": b"replicaCount: 1\n"}
        for path, text in (files or {}).items():
            chart_files[f"{name}/{path}"] = text.encode()
        layer = self.add_blob(deterministic_gzip(deterministic_tar(chart_files)), HELM_CHART_LAYER)
        config = self.add_blob(canonical_json(chart), HELM_CONFIG)
        manifest_annotations = {
            "org.opencontainers.image.description": chart["description"],
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.version": version,
            **(annotations or {}),
        }
        return self._manifest(OCI_MANIFEST, config, [layer], annotations=manifest_annotations)

    def raw_manifest(self, body: bytes, media_type: str) -> Descriptor:
        """Arbitrary manifest bytes under `media_type`, for bad-input cases (nothing is checked)."""
        return self.add_blob(body, media_type)

    # -- index.json --------------------------------------------------------------------------------------

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        """Record `descriptor` in `index.json` under `tag` (the ref.name annotation), replacing that tag."""
        if not self.has_blob(descriptor.digest):
            raise KeyError(f"cannot tag {tag!r}: {descriptor.digest} is not in the layout at {self.root}")
        entries = [entry for entry in self.tags().items() if entry[0] != tag]
        annotations = {**(descriptor.annotations or {}), REF_NAME_ANNOTATION: tag}
        entries.append((tag, dataclasses.replace(descriptor, annotations=annotations)))
        self._write_layout_index([entry for _, entry in sorted(entries, key=lambda item: item[0])])

    def tags(self) -> dict[str, Descriptor]:
        """Tag → descriptor, from `index.json`."""
        document = json.loads(self.index_path.read_bytes())
        result: dict[str, Descriptor] = {}
        for entry in document.get("manifests", []):
            annotations = entry.get("annotations") or {}
            if REF_NAME_ANNOTATION in annotations:
                result[annotations[REF_NAME_ANNOTATION]] = Descriptor(
                    media_type=entry["mediaType"], digest=entry["digest"], size=entry["size"],
                    platform=entry.get("platform"), annotations=annotations,
                    artifact_type=entry.get("artifactType"),
                )
        return result

    # -- internals ---------------------------------------------------------------------------------------

    def _manifest(
        self,
        media_type: str,
        config: Descriptor,
        layers: Sequence[Descriptor],
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        if annotations:
            document["annotations"] = dict(annotations)
        return self.add_blob(canonical_json(document), media_type)

    def _write_layout_index(self, entries: Sequence[Descriptor]) -> None:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry.to_json() for entry in entries]}
        self.index_path.write_bytes(canonical_json(document))


def cosign_tag(subject: Descriptor | str, suffix: str) -> str:
    """The tag cosign stores a signature (`sig`), attestation (`att`) or SBOM (`sbom`) of `subject` under:
    `sha256-<hex>.<suffix>`.

    A test oracle, written out on purpose rather than taken from importer.core.referrers (`cosign_tags`): the testbed
    stores signatures where cosign does (tests/testbed/test_signing_tools.py checks this against the real cosign), so
    that the product's own tag names are checked against it, never trusted by it. The same goes for `referrers_tag`.
    """
    digest = subject if isinstance(subject, str) else subject.digest
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.{suffix}"


def referrers_tag(subject: Descriptor | str) -> str:
    """The OCI referrers tag schema's tag for `subject`: `<algorithm>-<hex>` (the hex cut to 64 digits).

    A test oracle, like `cosign_tag`: independent of importer.core.referrers.referrers_tag, and checked against the
    real notation and cosign in tests/testbed/test_signing_tools.py."""
    digest = subject if isinstance(subject, str) else subject.digest
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest[:64]}"


def chart_tag(version: str) -> str:
    """The tag `helm push` uses for a chart version: `+` is not allowed in tags and becomes `_`."""
    return version.replace("+", "_")


def single(builder: ImageBuilder, platform: str = "linux/amd64", **options: Any) -> Descriptor:
    """One image manifest; `options` go to `ImageBuilder.image`."""
    return builder.image(platform, **options)


def multi(
    builder: ImageBuilder,
    platforms: Sequence[str],
    *,
    attestations: bool = False,
    docker: bool = False,
    seed: str = "",
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    """An index of one image per platform; with `attestations`, a BuildKit attestation after each, like buildx."""
    children: list[Descriptor] = []
    images = [builder.image(platform, seed=seed, docker=docker) for platform in platforms]
    children.extend(images)
    if attestations:
        children.extend(builder.attestation(image) for image in images)
    return builder.index(children, docker=docker, annotations=annotations)


def children_of(builder: ImageBuilder, index: Descriptor) -> list[Descriptor]:
    """The entries of an index the builder stored, as descriptors, exactly as listed: platform, annotations and
    artifactType included where the entry has them."""
    return [Descriptor(entry["mediaType"], entry["digest"], entry["size"], platform=entry.get("platform"),
                       annotations=entry.get("annotations"), artifact_type=entry.get("artifactType"))
            for entry in builder.document(index)["manifests"]]
