"""Tests of the test-image builder and the pushes: deterministic, valid OCI content, pushed to a registry unchanged.

The registry is a real CNCF distribution registry on 127.0.0.1 (testbed/registry.py); read-backs go through
`skopeo inspect --raw`, a client independent of our own pusher.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from testbed.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    HELM_CHART_LAYER,
    HELM_CONFIG,
    IN_TOTO_LAYER,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    ImageBuilder,
    canonical_json,
    children_of,
    multi,
    single,
)
from testbed.push import (
    PushError,
    fetch_manifest,
    list_tags,
    push,
    push_raw_manifest,
    skopeo_copy,
    skopeo_inspect_raw,
    verify_served,
    why_skopeo_cannot_push,
)
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(120)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
Build = Callable[[ImageBuilder], Descriptor]


def nested_index(builder: ImageBuilder) -> Descriptor:
    return builder.index([multi(builder, ["linux/amd64", "linux/arm64"]), builder.image("linux/arm/v7")])


def index_with_artifact_child(builder: ImageBuilder) -> Descriptor:
    image = builder.image("linux/amd64")
    return builder.index([image, builder.artifact(subject=image)])


def index_with_wrong_child_size(builder: ImageBuilder) -> Descriptor:
    child = builder.image("linux/amd64")
    entry = {**child.to_json(), "size": child.size + 5}
    return builder.raw_manifest(canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
                                OCI_INDEX)


# id → (how to build it, which way `push(via="auto")` must take)
KINDS: dict[str, tuple[Build, str]] = {
    "single-oci-image": (lambda b: single(b, "linux/arm64"), "skopeo"),
    "three-layer-image": (lambda b: b.image("linux/amd64", layers=3, layer_size=300), "skopeo"),
    "docker-v2-image": (lambda b: b.image("linux/amd64", docker=True), "skopeo"),
    "oci-index-with-attestations": (
        lambda b: multi(b, ["linux/amd64", "linux/arm64/v8"], attestations=True), "skopeo"),
    "docker-manifest-list": (lambda b: multi(b, ["linux/amd64", "linux/arm/v7"], docker=True), "skopeo"),
    "nested-index": (nested_index, "raw"),
    "no-platform-child": (
        lambda b: b.index([b.without_platform(b.image("linux/amd64")), b.image("linux/arm64")]), "skopeo"),
    "no-platform-child-in-docker-list": (
        lambda b: b.index([b.without_platform(b.image("linux/amd64", docker=True))], docker=True), "skopeo"),
    "inconsistent-child": (
        lambda b: b.index([b.image("linux/arm64", config_platform="linux/amd64"), b.image("linux/amd64")]),
        "skopeo"),
    "windows-with-os-version": (
        lambda b: b.index([b.image("windows/amd64", os_version="10.0.17763.5329"),
                           b.image("windows/amd64", os_version="10.0.20348.2227")]), "skopeo"),
    "helm-chart": (lambda b: b.helm_chart("demo", "1.2.3", files={"templates/cm.yaml": "kind: ConfigMap\n"}),
                   "skopeo"),
    "artifact-alone": (lambda b: b.artifact(subject=b.image("linux/amd64")), "skopeo"),
    "index-with-artifact-child": (index_with_artifact_child, "raw"),
    "index-with-annotations": (lambda b: multi(b, ["linux/amd64"], annotations={"org.example": "yes"}), "skopeo"),
    "raw-index-with-wrong-child-size": (index_with_wrong_child_size, "raw"),
}
KIND_IDS = list(KINDS)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture
def builder(tmp_path: Path) -> ImageBuilder:
    return ImageBuilder(tmp_path / "layout")


def repository_for(case_id: str) -> str:
    return f"tests/{case_id}"


def layout_files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


# -- determinism ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", KIND_IDS, ids=KIND_IDS)
def test_identical_specs_give_identical_bytes_in_separate_layouts(tmp_path: Path, case_id: str) -> None:
    """Building the same spec into two layouts gives equal descriptors and byte-identical layouts."""
    build, _ = KINDS[case_id]
    first, second = ImageBuilder(tmp_path / "one"), ImageBuilder(tmp_path / "two")
    assert build(first) == build(second)
    assert layout_files(first.root) == layout_files(second.root)


def test_digests_are_the_same_in_a_fresh_interpreter(tmp_path: Path, builder: ImageBuilder) -> None:
    """A fresh Python process with another hash seed builds the same digests (nothing depends on process state)."""
    script = (
        "import sys; from pathlib import Path; from testbed.images import ImageBuilder, multi\n"
        "b = ImageBuilder(Path(sys.argv[1]))\n"
        "print(multi(b, ['linux/amd64', 'linux/arm/v6', 'windows/amd64'], attestations=True).digest)\n"
        "print(multi(b, ['linux/arm64'], docker=True, seed='x').digest)\n"
        "print(b.helm_chart('demo', '0.1.0', files={'b.txt': 'b', 'a.txt': 'a'}).digest)\n"
    )
    expected = [
        multi(builder, ["linux/amd64", "linux/arm/v6", "windows/amd64"], attestations=True).digest,
        multi(builder, ["linux/arm64"], docker=True, seed="x").digest,
        builder.helm_chart("demo", "0.1.0", files={"b.txt": "b", "a.txt": "a"}).digest,
    ]
    for hash_seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"fresh-{hash_seed}")],
            cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert completed.stdout.split() == expected


DIFFERENT_SPECS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "platform": ({"platform": "linux/amd64"}, {"platform": "linux/arm64"}),
    "variant": ({"platform": "linux/arm/v6"}, {"platform": "linux/arm/v7"}),
    "seed": ({"platform": "linux/amd64"}, {"platform": "linux/amd64", "seed": "rebuild"}),
    "os-version": ({"platform": "windows/amd64", "os_version": "10.0.17763.1"},
                   {"platform": "windows/amd64", "os_version": "10.0.20348.1"}),
    "unnormalised-spelling": ({"platform": "linux/arm64"}, {"platform": "linux/aarch64"}),
}


@pytest.mark.parametrize("case_id", list(DIFFERENT_SPECS), ids=list(DIFFERENT_SPECS))
def test_different_specs_give_different_layers(builder: ImageBuilder, case_id: str) -> None:
    """Images that differ in platform, variant, seed or os.version differ in their layer blobs, not only in config."""
    left_spec, right_spec = DIFFERENT_SPECS[case_id]
    left, right = builder.image(**left_spec), builder.image(**right_spec)
    assert left.digest != right.digest
    left_layers = [layer["digest"] for layer in builder.document(left)["layers"]]
    right_layers = [layer["digest"] for layer in builder.document(right)["layers"]]
    assert set(left_layers).isdisjoint(right_layers)


def test_docker_and_oci_images_of_one_platform_differ(builder: ImageBuilder) -> None:
    """The Docker and OCI flavours of one image share layer bytes but not the manifest digest."""
    oci, docker = builder.image("linux/amd64"), builder.image("linux/amd64", docker=True)
    assert (oci.media_type, docker.media_type) == (OCI_MANIFEST, DOCKER_MANIFEST)
    assert oci.digest != docker.digest
    assert [layer["digest"] for layer in builder.document(oci)["layers"]] == [
        layer["digest"] for layer in builder.document(docker)["layers"]
    ]


# -- contents ------------------------------------------------------------------------------------------------

CONFIG_CASES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, str]]] = {
    # id: (image() arguments, expected index-entry platform, expected config platform fields)
    "arm64-v8": ({"platform": "linux/arm64/v8"}, {"architecture": "arm64", "os": "linux", "variant": "v8"},
                 {"architecture": "arm64", "os": "linux", "variant": "v8"}),
    "arm-v6": ({"platform": "linux/arm/v6"}, {"architecture": "arm", "os": "linux", "variant": "v6"},
               {"architecture": "arm", "os": "linux", "variant": "v6"}),
    "amd64-no-variant": ({"platform": "linux/amd64"}, {"architecture": "amd64", "os": "linux"},
                         {"architecture": "amd64", "os": "linux"}),
    "windows-os-version": (
        {"platform": "windows/amd64", "os_version": "10.0.17763.5329"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329"}),
    "inconsistent": ({"platform": "linux/arm64", "config_platform": "linux/amd64"},
                     {"architecture": "arm64", "os": "linux"}, {"architecture": "amd64", "os": "linux"}),
    "docker": ({"platform": "linux/arm/v7", "docker": True}, {"architecture": "arm", "os": "linux", "variant": "v7"},
               {"architecture": "arm", "os": "linux", "variant": "v7"}),
}


@pytest.mark.parametrize("case_id", list(CONFIG_CASES), ids=list(CONFIG_CASES))
def test_image_entry_and_config_carry_the_platform(builder: ImageBuilder, case_id: str) -> None:
    """The index entry carries the requested platform and the config its own, with `config: {}` and rootfs."""
    arguments, entry_platform, config_platform = CONFIG_CASES[case_id]
    image = builder.image(**arguments)
    assert image.platform == entry_platform
    config = json.loads(builder.blob(builder.document(image)["config"]["digest"]))
    platform_keys = {"architecture", "os", "variant", "os.version"}
    assert {key: value for key, value in config.items() if key in platform_keys} == config_platform
    assert config["config"] == {}
    assert config["rootfs"]["type"] == "layers"


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_layers_are_deterministic_tars_with_correct_diff_ids_and_sizes(builder: ImageBuilder, docker: bool) -> None:
    """Layers are gzip (mtime 0) of sorted tars owned by 0:0 with mtime 0; diff_ids and sizes match the blobs."""
    image = builder.image("linux/arm64", layers=2, layer_size=200, docker=docker)
    manifest = builder.document(image)
    assert image.size == len(builder.blob(image.digest))
    config_entry = manifest["config"]
    assert config_entry["mediaType"] == (DOCKER_CONFIG if docker else OCI_CONFIG)
    assert config_entry["size"] == len(builder.blob(config_entry["digest"]))
    diff_ids = json.loads(builder.blob(config_entry["digest"]))["rootfs"]["diff_ids"]
    assert len(manifest["layers"]) == len(diff_ids) == 2
    for layer, diff_id in zip(manifest["layers"], diff_ids):
        compressed = builder.blob(layer["digest"])
        assert layer["mediaType"] == (DOCKER_LAYER if docker else OCI_LAYER)
        assert layer["size"] == len(compressed)
        assert compressed[4:8] == b"\0\0\0\0"  # gzip header MTIME
        uncompressed = gzip.decompress(compressed)
        assert "sha256:" + hashlib.sha256(uncompressed).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(uncompressed)) as archive:
            members = archive.getmembers()
        assert [member.name for member in members] == sorted(member.name for member in members)
        assert {(member.mtime, member.uid, member.gid) for member in members} == {(0, 0, 0)}
        assert sum(member.size for member in members if member.isfile()) == 200


def test_attestation_is_listed_like_buildkit_does(builder: ImageBuilder) -> None:
    """An attestation entry is unknown/unknown, points at its subject, and holds an in-toto layer about it."""
    subject = builder.image("linux/amd64")
    attestation = builder.attestation(subject)
    assert attestation.platform == {"architecture": "unknown", "os": "unknown"}
    assert attestation.annotations == {"vnd.docker.reference.digest": subject.digest,
                                       "vnd.docker.reference.type": "attestation-manifest"}
    manifest = builder.document(attestation)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [IN_TOTO_LAYER]
    statement = json.loads(builder.blob(manifest["layers"][0]["digest"]))
    assert statement["subject"][0]["digest"] == {"sha256": subject.hex}


def test_artifact_has_artifact_type_empty_config_and_subject(builder: ImageBuilder) -> None:
    """An OCI 1.1 artifact carries artifactType (also in its descriptor), the empty config, and its subject."""
    subject = builder.image("linux/amd64")
    artifact = builder.artifact("application/vnd.example.sbom+json", subject=subject)
    manifest = builder.document(artifact)
    assert artifact.artifact_type == manifest["artifactType"] == "application/vnd.example.sbom+json"
    assert manifest["config"]["mediaType"] == OCI_EMPTY
    assert builder.blob(manifest["config"]["digest"]) == b"{}"
    assert manifest["subject"] == {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.size}
    assert artifact.platform is None


def test_helm_chart_is_laid_out_like_helm_push(builder: ImageBuilder) -> None:
    """A Helm chart has the Helm config (Chart.yaml as JSON) and a chart tarball under `<name>/`."""
    chart = builder.helm_chart("demo", "1.2.3", files={"templates/cm.yaml": "kind: ConfigMap\n"},
                               annotations={"org.example": "x"})
    manifest = builder.document(chart)
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    config = json.loads(builder.blob(manifest["config"]["digest"]))
    assert (config["apiVersion"], config["name"], config["version"]) == ("v2", "demo", "1.2.3")
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART_LAYER]
    with tarfile.open(fileobj=io.BytesIO(builder.blob(manifest["layers"][0]["digest"])), mode="r:gz") as archive:
        names = archive.getnames()
        chart_yaml = archive.extractfile("demo/Chart.yaml").read().decode()  # type: ignore[union-attr]
    assert {"demo/Chart.yaml", "demo/values.yaml", "demo/templates/cm.yaml"} <= set(names)
    assert 'name: "demo"' in chart_yaml and 'version: "1.2.3"' in chart_yaml
    assert manifest["annotations"]["org.example"] == "x"
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.2.3"


@pytest.mark.parametrize("platform", ["linux", "linux/", "/amd64", "linux/arm/v7/extra"],
                         ids=["no-arch", "empty-arch", "empty-os", "four-parts"])
def test_malformed_platform_strings_are_refused(builder: ImageBuilder, platform: str) -> None:
    """A platform that is not os/arch[/variant] raises an error naming it."""
    with pytest.raises(ValueError, match="is not os/architecture"):
        builder.image(platform)


# -- OCI validity ----------------------------------------------------------------------------------------------

MEDIA_TYPE = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$"}
DIGEST = {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
PLATFORM_SCHEMA = {
    "type": "object", "required": ["architecture", "os"],
    "properties": {"architecture": {"type": "string"}, "os": {"type": "string"}, "os.version": {"type": "string"},
                   "variant": {"type": "string"}},
}
DESCRIPTOR_SCHEMA = {
    "type": "object", "required": ["mediaType", "digest", "size"],
    "properties": {"mediaType": MEDIA_TYPE, "digest": DIGEST, "size": {"type": "integer", "minimum": 0},
                   "annotations": STRING_MAP, "platform": PLATFORM_SCHEMA, "artifactType": MEDIA_TYPE,
                   "data": {"type": "string"}},
}
MANIFEST_SCHEMA = {
    "type": "object", "required": ["schemaVersion", "config", "layers"],
    "properties": {"schemaVersion": {"const": 2}, "mediaType": {"enum": [OCI_MANIFEST, DOCKER_MANIFEST]},
                   "config": DESCRIPTOR_SCHEMA, "layers": {"type": "array", "items": DESCRIPTOR_SCHEMA},
                   "annotations": STRING_MAP, "artifactType": MEDIA_TYPE, "subject": DESCRIPTOR_SCHEMA},
}
INDEX_SCHEMA = {
    "type": "object", "required": ["schemaVersion", "manifests"],
    "properties": {"schemaVersion": {"const": 2}, "mediaType": {"enum": [OCI_INDEX, DOCKER_MANIFEST_LIST]},
                   "manifests": {"type": "array", "items": DESCRIPTOR_SCHEMA}, "annotations": STRING_MAP},
}
IMAGE_CONFIG_SCHEMA = {
    "type": "object", "required": ["architecture", "os", "rootfs"],
    "properties": {**PLATFORM_SCHEMA["properties"], "config": {"type": "object"},
                   "rootfs": {"type": "object", "required": ["type", "diff_ids"],
                              "properties": {"type": {"const": "layers"},
                                             "diff_ids": {"type": "array", "items": DIGEST}}}},
}


def check_tree(builder: ImageBuilder, descriptor: Descriptor) -> None:
    """Validate a descriptor, its blob, and (recursively) everything it refers to."""
    jsonschema.validate(descriptor.to_json(), DESCRIPTOR_SCHEMA)
    content = builder.blob(descriptor.digest)
    assert (len(content), "sha256:" + hashlib.sha256(content).hexdigest()) == (descriptor.size, descriptor.digest)
    document = json.loads(content) if descriptor.media_type.endswith("json") else None
    if descriptor.is_index:
        jsonschema.validate(document, INDEX_SCHEMA)
        assert document["mediaType"] == descriptor.media_type
        for child in children_of(builder, descriptor):
            check_tree(builder, child)
    elif descriptor.media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        jsonschema.validate(document, MANIFEST_SCHEMA)
        assert document["mediaType"] == descriptor.media_type
        config = Descriptor(document["config"]["mediaType"], document["config"]["digest"], document["config"]["size"])
        layers = [Descriptor(layer["mediaType"], layer["digest"], layer["size"]) for layer in document["layers"]]
        for blob in [config, *layers]:
            check_tree(builder, blob)
        if config.media_type in (OCI_CONFIG, DOCKER_CONFIG):
            config_document = json.loads(builder.blob(config.digest))
            jsonschema.validate(config_document, IMAGE_CONFIG_SCHEMA)
            assert len(config_document["rootfs"]["diff_ids"]) == len(layers)


VALID_KIND_IDS = [case_id for case_id in KIND_IDS if not case_id.startswith("raw-")]


@pytest.mark.parametrize("case_id", VALID_KIND_IDS, ids=VALID_KIND_IDS)
def test_everything_built_is_valid_oci(builder: ImageBuilder, case_id: str) -> None:
    """Every manifest, index, config and descriptor built is valid per the image spec, with right sizes and digests."""
    build, _ = KINDS[case_id]
    check_tree(builder, build(builder))
    assert json.loads((builder.root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    jsonschema.validate(json.loads(builder.index_path.read_bytes()), INDEX_SCHEMA)


@pytest.mark.parametrize(
    ("platform", "os_version", "architecture", "os_name"),
    [("linux/arm64/v8", None, "arm64", "linux"), ("windows/amd64", "10.0.17763.5329", "amd64", "windows")],
    ids=["linux-arm64", "windows-amd64"],
)
def test_tagged_layout_is_readable_by_skopeo(
    builder: ImageBuilder, platform: str, os_version: str | None, architecture: str, os_name: str
) -> None:
    """skopeo reads a tagged image from the layout on disk: same manifest bytes, config parsed to the platform."""
    image = builder.image(platform, os_version=os_version)
    builder.tag(image, "v1")
    builder.tag(builder.image("linux/amd64"), "other")
    assert set(builder.tags()) == {"v1", "other"}
    assert skopeo_inspect_raw(f"oci:{builder.root}:v1") == builder.blob(image.digest)
    completed = subprocess.run(["skopeo", "inspect", f"oci:{builder.root}:v1"], capture_output=True, check=True)
    inspected = json.loads(completed.stdout)
    assert (inspected["Architecture"], inspected["Os"], inspected["Digest"]) == (architecture, os_name, image.digest)


# -- pushing to a real registry ------------------------------------------------------------------------------


def assert_served_unchanged(builder: ImageBuilder, registry: LocalRegistry, repository: str,
                            descriptor: Descriptor, reference: str) -> None:
    """skopeo reads back the same bytes for `reference`, and for every child by digest, recursively."""
    assert skopeo_inspect_raw(f"docker://{registry.host}/{repository}{reference}") == builder.blob(descriptor.digest)
    if descriptor.is_index:
        for child in children_of(builder, descriptor):
            assert_served_unchanged(builder, registry, repository, child, f"@{child.digest}")


@pytest.mark.parametrize("case_id", KIND_IDS, ids=KIND_IDS)
def test_each_kind_is_pushed_with_its_digest_preserved(
    builder: ImageBuilder, registry: LocalRegistry, case_id: str
) -> None:
    """Each kind goes the expected way (skopeo or raw) and the registry serves it and its children byte for byte."""
    build, expected_way = KINDS[case_id]
    descriptor = build(builder)
    obstacle = why_skopeo_cannot_push(builder, descriptor)
    assert ("raw" if obstacle else "skopeo") == expected_way, obstacle
    repository = repository_for(case_id)
    assert push(builder, descriptor, registry.host, repository, "v1") == descriptor.digest
    assert_served_unchanged(builder, registry, repository, descriptor, ":v1")
    served = fetch_manifest(registry.host, repository, "v1")
    assert (served.digest, served.media_type) == (descriptor.digest, descriptor.media_type)


@pytest.mark.parametrize("via", ["skopeo", "raw"])
@pytest.mark.parametrize("case_id", ["single-oci-image", "docker-manifest-list", "oci-index-with-attestations"])
def test_both_ways_push_the_same_bytes(builder: ImageBuilder, registry: LocalRegistry, case_id: str, via: str) -> None:
    """Where skopeo can push, the raw pusher gives the same result: forcing either way preserves every digest."""
    build, _ = KINDS[case_id]
    descriptor = build(builder)
    repository = f"both-ways/{case_id}-{via}"
    pushed = push(builder, descriptor, registry.host, repository, "v1", via=via)  # type: ignore[arg-type]
    assert pushed == descriptor.digest
    assert_served_unchanged(builder, registry, repository, descriptor, ":v1")


@pytest.mark.parametrize("via", ["skopeo", "raw"])
def test_untagged_push_leaves_no_tag(builder: ImageBuilder, registry: LocalRegistry, via: str) -> None:
    """`tag=None` pushes by digest only: the manifest is served by digest and the repository lists no tag."""
    descriptor = multi(builder, ["linux/amd64", "linux/s390x"], attestations=True)
    repository = f"untagged/{via}"
    pushed = push(builder, descriptor, registry.host, repository, None, via=via)  # type: ignore[arg-type]
    assert pushed == descriptor.digest
    assert_served_unchanged(builder, registry, repository, descriptor, f"@{descriptor.digest}")
    assert list_tags(registry.host, repository) == []


@pytest.mark.parametrize(
    ("case_id", "skopeo_message"),
    [("nested-index", "manifest list instead of a manifest"), ("index-with-artifact-child", "preserve digests")],
    ids=["nested-index", "artifact-entry"],
)
def test_skopeo_cannot_push_what_goes_raw(
    builder: ImageBuilder, registry: LocalRegistry, case_id: str, skopeo_message: str
) -> None:
    """Forcing skopeo on the cases routed raw fails instead of pushing changed bytes (why those cases go raw)."""
    build, _ = KINDS[case_id]
    with pytest.raises(PushError, match=skopeo_message):
        push(builder, build(builder), registry.host, f"forced-skopeo/{case_id}", "v1", via="skopeo")


def test_raw_bad_manifest_is_stored_verbatim(builder: ImageBuilder, registry: LocalRegistry) -> None:
    """An odd but acceptable manifest (pretty-printed, unknown field, garbage config) is pushed and read back as is."""
    garbage_config = builder.add_blob(b"this is not json", OCI_CONFIG)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": garbage_config.to_json(),
                       "layers": [], "x-unknown": True}, indent=3).encode() + b"\n"
    descriptor = builder.raw_manifest(body, OCI_MANIFEST)
    assert push(builder, descriptor, registry.host, "bad/verbatim", "v1") == descriptor.digest
    assert skopeo_inspect_raw(f"docker://{registry.host}/bad/verbatim:v1") == body


def test_push_raw_manifest_puts_exactly_the_bytes(builder: ImageBuilder, registry: LocalRegistry) -> None:
    """`push_raw_manifest` stores the body unchanged once its blobs are there, and returns its digest."""
    image = builder.image("linux/amd64")
    push(builder, image, registry.host, "bad/direct", None)
    body = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": [{**image.to_json(), "platform": {"architecture": "", "os": ""}}]})
    digest = push_raw_manifest(registry.host, "bad/direct", "empty-platform", body, OCI_INDEX)
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert skopeo_inspect_raw(f"docker://{registry.host}/bad/direct:empty-platform") == body


REFUSED_MANIFESTS: dict[str, tuple[bytes, str, str]] = {
    "not-json": (b"this is not json", OCI_MANIFEST, "MANIFEST_INVALID"),
    "missing-config-blob": (
        canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + "0" * 64, "size": 2}}),
        OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN"),
    "missing-child": (
        canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 5}]}),
        OCI_INDEX, "MANIFEST_BLOB_UNKNOWN"),
    "media-type-field-disagrees": (
        canonical_json({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": []}),
        OCI_INDEX, "MANIFEST_INVALID"),
}


@pytest.mark.parametrize("case_id", list(REFUSED_MANIFESTS), ids=list(REFUSED_MANIFESTS))
def test_manifest_the_registry_refuses_raises_with_its_answer(
    builder: ImageBuilder, registry: LocalRegistry, case_id: str
) -> None:
    """A bad manifest goes raw, and the registry's refusal surfaces as PushError naming the reference and the code."""
    body, media_type, registry_code = REFUSED_MANIFESTS[case_id]
    descriptor = builder.raw_manifest(body, media_type)
    assert why_skopeo_cannot_push(builder, descriptor) is not None
    with pytest.raises(PushError, match=rf"bad/refused:{case_id}.*{registry_code}"):
        push(builder, descriptor, registry.host, "bad/refused", case_id)


SERVED_MISMATCHES: dict[str, tuple[Callable[[ImageBuilder, Descriptor], Descriptor], list[str]]] = {
    # id: (the descriptor expected, given the one actually pushed; the differences the error must list)
    "other-image": (lambda b, pushed: b.image("linux/arm64"), ["digest", "other content"]),
    "same-bytes-other-media-type": (lambda b, pushed: Descriptor(DOCKER_MANIFEST, pushed.digest, pushed.size),
                                    ["media type"]),
}


@pytest.mark.parametrize("case_id", list(SERVED_MISMATCHES), ids=list(SERVED_MISMATCHES))
def test_verify_served_lists_every_difference(builder: ImageBuilder, registry: LocalRegistry, case_id: str) -> None:
    """verify_served raises naming the reference and each of digest, media type and bytes that differ."""
    pushed = builder.image("linux/amd64")
    push(builder, pushed, registry.host, "verify/mismatch", "v1")
    make_expected, differences = SERVED_MISMATCHES[case_id]
    expected = make_expected(builder, pushed)
    with pytest.raises(PushError, match="verify/mismatch:v1 should be") as raised:
        verify_served(builder, expected, registry.host, "verify/mismatch", "v1")
    served_part = str(raised.value).split("the registry serves ", 1)[1]
    assert [what for what in ("digest", "media type", "other content") if what in served_part] == differences
    assert verify_served(builder, pushed, registry.host, "verify/mismatch", "v1").digest == pushed.digest


@pytest.mark.parametrize(
    "destination",
    ["docker://registry.example.com/team/app:v1", "docker://10.0.0.8:5000/team/app:v1"],
    ids=["public-name", "private-address"],
)
def test_skopeo_only_talks_to_loopback_registries(builder: ImageBuilder, destination: str) -> None:
    """skopeo_copy refuses a registry that is not on this machine before running anything."""
    with pytest.raises(ValueError, match="only talk to registries on this machine"):
        skopeo_copy(f"oci:{builder.root}", destination)


def test_unknown_push_way_is_refused(builder: ImageBuilder, registry: LocalRegistry) -> None:
    """`via` other than auto, skopeo or raw raises an error naming it."""
    with pytest.raises(ValueError, match="via='ftp'"):
        push(builder, builder.image("linux/amd64"), registry.host, "x/y", "v1", via="ftp")  # type: ignore[arg-type]
