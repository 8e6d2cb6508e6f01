"""Push images built by `testbed/images.py` to a registry on this machine, digests unchanged.

    digest = push(builder, index, registry.host, "team/app", "1.0")     # skopeo where faithful, raw otherwise
    push(builder, child, registry.host, "team/app", None)               # by digest only, no tag
    fetch_manifest(registry.host, "team/app", "1.0").body                # read it back

Two ways to push, chosen per image by `via="auto"` (`why_skopeo_cannot_push` says why not skopeo), or forced:

- skopeo: `skopeo copy --all --preserve-digests oci:STAGING docker://HOST/REPO:TAG` (`@DIGEST` when untagged),
  the way users push. Checked with skopeo 1.9.3, it copies these byte for byte: OCI and Docker v2 images, OCI
  indexes and Docker manifest lists (also mixed), BuildKit attestation children, children without a platform,
  children whose entry platform disagrees with their config, Windows `os.version`, Helm charts and OCI 1.1
  artifacts on their own (non-image configs are fine), index annotations and unknown fields.
  The builder writes Docker media types itself, so `--format v2s2` (a conversion, new digests) is never needed.
- raw: blobs (HEAD, else POST + PUT), then child manifests by digest, then the requested reference; urllib only.
  Used for what skopeo 1.9 cannot push faithfully:
  * an index inside an index: skopeo stops with "Unexpectedly received a manifest list instead of a manifest";
  * an index entry with `artifactType`: skopeo's index type lacks the field and drops it, changing the digest
    (with `--preserve-digests` it refuses instead);
  * anything not well-formed: not JSON, not one of the four manifest/index media types, `schemaVersion` not 2,
    a `mediaType` field that disagrees, a platform that is not an object, a wrong size, a blob the layout lacks.
    skopeo re-serialises or fails on these, while bad-input cases want the registry's own answer.

Either way `verify_served` then checks that the registry serves the same digest, media type and bytes for the
pushed reference; `PushError` says what differed or what the registry refused. skopeo only reaches loopback hosts.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Literal

from testbed.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    IMAGE_MANIFEST_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageBuilder,
    canonical_json,
    sha256_digest,
)

SKOPEO_BINARY = "/usr/bin/skopeo"
SKOPEO_TIMEOUT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

PushMethod = Literal["auto", "skopeo", "raw"]


class PushError(RuntimeError):
    """A push failed, or the registry does not hold exactly what was pushed."""


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A manifest as the registry serves it."""

    body: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


# -- choosing the way ------------------------------------------------------------------------------------


def why_skopeo_cannot_push(builder: ImageBuilder, descriptor: Descriptor) -> str | None:
    """Why skopeo 1.9 would fail on or rewrite this image (see the module docstring); None if it copies it as is.

    Besides the two known gaps (nested indexes, entries with `artifactType`), anything that is not a well-formed
    manifest or index goes raw: skopeo parses into typed structs and re-serialises what does not fit.
    """
    return _skopeo_obstacle(builder, descriptor, nested=False)


def _skopeo_obstacle(builder: ImageBuilder, descriptor: Descriptor, *, nested: bool) -> str | None:
    name = f"{descriptor.media_type} {descriptor.digest}"
    if descriptor.media_type not in INDEX_MEDIA_TYPES | IMAGE_MANIFEST_MEDIA_TYPES:
        return f"{name}: skopeo only pushes image manifests and indexes"
    if not builder.has_blob(descriptor.digest):
        return f"{name}: not in the layout"
    document = _json_object(builder.blob(descriptor.digest))
    if document is None:
        return f"{name}: not a JSON object"
    if document.get("schemaVersion") != 2:
        return f"{name}: schemaVersion is not 2"
    if document.get("mediaType", descriptor.media_type) != descriptor.media_type:
        return f"{name}: its mediaType field says {document['mediaType']!r}"
    if descriptor.is_index:
        if nested:
            return f"{name}: an index inside an index (skopeo 1.9 copies one level only)"
        entries = document.get("manifests")
        if not isinstance(entries, list):
            return f"{name}: `manifests` is not a list"
        for entry in entries:
            if (reason := _entry_obstacle(builder, entry)) is not None:
                return f"{name}: {reason}"
            if "platform" in entry and not isinstance(entry["platform"], dict):
                return f"{name}: entry {entry['digest']} has a platform that is not an object"
            if "artifactType" in entry:
                return f"{name}: entry {entry['digest']} has artifactType, which skopeo 1.9 drops"
            child = Descriptor(media_type=entry["mediaType"], digest=entry["digest"], size=entry["size"])
            if (reason := _skopeo_obstacle(builder, child, nested=True)) is not None:
                return reason
        return None
    layers = document.get("layers")
    if not isinstance(layers, list):
        return f"{name}: `layers` is not a list"
    for entry in [document.get("config"), *layers]:
        if (reason := _entry_obstacle(builder, entry)) is not None:
            return f"{name}: {reason}"
    return None


def _entry_obstacle(builder: ImageBuilder, entry: object) -> str | None:
    """Why a descriptor inside a manifest or index is not one skopeo copies unchanged, or None."""
    if not isinstance(entry, dict):
        return f"descriptor {entry!r} is not an object"
    digest, size = entry.get("digest"), entry.get("size")
    if not isinstance(entry.get("mediaType"), str) or not isinstance(digest, str) or not isinstance(size, int):
        return f"descriptor {entry!r} lacks a string mediaType, a string digest or an integer size"
    if not builder.has_blob(digest):
        return f"{digest} is not in the layout"
    if len(builder.blob(digest)) != size:
        return f"{digest} is listed with size {size}, but has {len(builder.blob(digest))} bytes"
    return None


# -- pushing ---------------------------------------------------------------------------------------------


def push(
    builder: ImageBuilder,
    descriptor: Descriptor,
    registry_host: str,
    repository: str,
    tag: str | None,
    *,
    via: PushMethod = "auto",
) -> str:
    """Push `descriptor` and everything it refers to as `repository:tag` (by digest only if `tag` is None).

    `via="auto"` uses skopeo unless `why_skopeo_cannot_push` has a reason; "skopeo" or "raw" force one way.
    Returns the digest the registry reports, which is always `descriptor.digest`: anything else raises
    `PushError`, as does a registry that refuses the push (the message carries the registry's answer).
    """
    if via not in ("auto", "skopeo", "raw"):
        raise ValueError(f"via={via!r}: expected 'auto', 'skopeo' or 'raw'")
    reference = tag if tag is not None else descriptor.digest
    obstacle = why_skopeo_cannot_push(builder, descriptor)
    use_skopeo = via == "skopeo" or (via == "auto" and obstacle is None)
    if use_skopeo:
        _push_with_skopeo(builder, descriptor, registry_host, repository, tag, obstacle)
    else:
        _push_tree_raw(builder, descriptor, registry_host, repository, reference)
    try:
        return verify_served(builder, descriptor, registry_host, repository, reference).digest
    except PushError as error:
        raise PushError(f"after a push via {'skopeo' if use_skopeo else 'raw'}: {error}") from None


def verify_served(
    builder: ImageBuilder, descriptor: Descriptor, registry_host: str, repository: str, reference: str
) -> FetchedManifest:
    """Check that the registry serves exactly `descriptor` (digest, media type, bytes) for `reference`.

    Raises `PushError` listing every difference; returns what was served.
    """
    served = fetch_manifest(registry_host, repository, reference)
    differences = [
        what
        for what, same in (
            (f"digest {served.digest}", served.digest == descriptor.digest),
            (f"media type {served.media_type!r}", served.media_type == descriptor.media_type),
            (f"other content ({len(served.body)} bytes)", served.body == builder.blob(descriptor.digest)),
        )
        if not same
    ]
    if differences:
        raise PushError(
            f"{_display(registry_host, repository, reference)} should be {descriptor.digest} "
            f"({descriptor.media_type}), but the registry serves {', '.join(differences)}"
        )
    return served


def _push_with_skopeo(
    builder: ImageBuilder,
    descriptor: Descriptor,
    registry_host: str,
    repository: str,
    tag: str | None,
    obstacle: str | None,
) -> None:
    destination = f"docker://{_display(registry_host, repository, tag or descriptor.digest)}"
    with tempfile.TemporaryDirectory(prefix="skopeo-push-") as staging_name:
        staging = Path(staging_name)
        # A layout holding only this descriptor, untagged: skopeo's oci: transport then picks it whatever its media
        # type (looked up by tag it skips Docker media types). The blobs are the builder's own.
        (staging / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        entry = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size)
        (staging / "index.json").write_bytes(
            canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry.to_json()]})
        )
        (staging / "blobs").symlink_to(builder.root.resolve() / "blobs", target_is_directory=True)
        digest_file = staging / "pushed-digest"
        try:
            skopeo_copy(f"oci:{staging}", destination, "--all", "--preserve-digests", "--digestfile", str(digest_file))
        except PushError as error:
            hint = f" (skopeo cannot push this faithfully: {obstacle})" if obstacle else ""
            raise PushError(f"{error}{hint}") from None
        pushed = digest_file.read_text().strip()
    if pushed != descriptor.digest:
        raise PushError(f"skopeo pushed {destination} as {pushed}, not as the built {descriptor.digest}")


def _push_tree_raw(
    builder: ImageBuilder, descriptor: Descriptor, registry_host: str, repository: str, reference: str
) -> None:
    """Blobs first, then child manifests by digest, then `descriptor` under `reference`."""
    body = builder.blob(descriptor.digest)
    document = _json_object(body) or {}
    entries = document.get("manifests") if descriptor.is_index else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and builder.has_blob(str(entry.get("digest"))):
            child = Descriptor(str(entry.get("mediaType")), entry["digest"], int(entry.get("size") or 0))
            _push_tree_raw(builder, child, registry_host, repository, child.digest)
    for blob in _referenced_blobs(document):
        if builder.has_blob(blob):  # a missing blob is the point of some bad-input cases: let the registry say so
            push_blob(registry_host, repository, builder.blob(blob))
    push_raw_manifest(registry_host, repository, reference, body, descriptor.media_type)


def push_blob(registry_host: str, repository: str, content: bytes) -> str:
    """Upload one blob unless the registry has it (HEAD, then POST + monolithic PUT); returns its digest."""
    digest = sha256_digest(content)
    base = f"http://{registry_host}/v2/{repository}/blobs"
    try:
        _request("HEAD", f"{base}/{digest}")
        return digest
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise PushError(f"HEAD {base}/{digest} answered {error.code}: {_error_text(error)}") from None
    try:
        started = _request("POST", f"{base}/uploads/")
        location = urllib.parse.urljoin(f"http://{registry_host}/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        finished = _request(
            "PUT",
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            body=content,
            headers={"Content-Type": "application/octet-stream"},
        )
    except urllib.error.HTTPError as error:
        raise PushError(
            f"uploading blob {digest} to {registry_host}/{repository} failed with {error.code}: {_error_text(error)}"
        ) from None
    stored = finished.headers.get("Docker-Content-Digest", digest)
    if stored != digest:
        raise PushError(f"blob {digest} was stored in {registry_host}/{repository} as {stored}")
    return digest


def push_raw_manifest(registry_host: str, repository: str, reference: str, body: bytes, media_type: str) -> str:
    """PUT `body` as-is as manifest `reference` (tag or digest) with Content-Type `media_type`; returns its digest.

    Nothing it refers to is uploaded: push blobs and children first (or use `push(..., via="raw")`).
    """
    url = f"http://{registry_host}/v2/{repository}/manifests/{reference}"
    try:
        response = _request("PUT", url, body=body, headers={"Content-Type": media_type})
    except urllib.error.HTTPError as error:
        raise PushError(
            f"PUT manifest {_display(registry_host, repository, reference)} ({media_type}, {sha256_digest(body)}) "
            f"was refused with {error.code}: {_error_text(error)}"
        ) from None
    return response.headers.get("Docker-Content-Digest") or sha256_digest(body)


def fetch_manifest(registry_host: str, repository: str, reference: str) -> FetchedManifest:
    """GET a manifest by tag or digest, accepting every manifest and index media type."""
    url = f"http://{registry_host}/v2/{repository}/manifests/{reference}"
    try:
        response = _request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
    except urllib.error.HTTPError as error:
        raise PushError(f"GET {url} answered {error.code}: {_error_text(error)}") from None
    body = response.body
    return FetchedManifest(
        body=body,
        media_type=response.headers.get("Content-Type", ""),
        digest=response.headers.get("Docker-Content-Digest") or sha256_digest(body),
    )


def list_tags(registry_host: str, repository: str) -> list[str]:
    """The tags of `repository` (empty when it has none or does not exist)."""
    try:
        response = _request("GET", f"http://{registry_host}/v2/{repository}/tags/list")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise PushError(f"listing tags of {registry_host}/{repository} answered {error.code}") from None
    return list(json.loads(response.body).get("tags") or [])


# -- skopeo ----------------------------------------------------------------------------------------------


def skopeo_copy(src: str, dst: str, *extra: str) -> None:
    """`skopeo copy [extra] src dst`, TLS checks off for loopback registries; raises `PushError` with stderr."""
    _run_skopeo("copy", *_tls_flags(src, "--src-tls-verify=false"), *_tls_flags(dst, "--dest-tls-verify=false"),
                "--quiet", *extra, src, dst)


def skopeo_inspect_raw(reference: str) -> bytes:
    """`skopeo inspect --raw reference`: the manifest bytes as skopeo reads them (another client than ours)."""
    return _run_skopeo("inspect", "--raw", *_tls_flags(reference, "--tls-verify=false"), reference)


def _run_skopeo(*arguments: str) -> bytes:
    command = [SKOPEO_BINARY, *arguments]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=SKOPEO_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PushError(f"{' '.join(command)} did not finish within {SKOPEO_TIMEOUT_SECONDS} s") from None
    if completed.returncode != 0:
        raise PushError(
            f"{' '.join(command)} failed (exit {completed.returncode}): {completed.stderr.decode().strip()}"
        )
    return completed.stdout


def _tls_flags(reference: str, flag: str) -> list[str]:
    """`[flag]` for a docker:// reference on a loopback host; refuses any other registry host."""
    if not reference.startswith("docker://"):
        return []
    host = reference.removeprefix("docker://").split("/", 1)[0]
    hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if hostname not in LOOPBACK_HOSTS and not hostname.startswith("127."):
        raise ValueError(f"{reference!r}: tests only talk to registries on this machine, not {host!r}")
    return [flag]


# -- HTTP ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: Message
    body: bytes


def _request(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> _Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
        return _Response(status=response.status, headers=response.headers, body=response.read())


def _display(registry_host: str, repository: str, reference: str) -> str:
    """`host/repo:tag` or `host/repo@sha256:…`."""
    separator = "@" if reference.startswith("sha256:") else ":"
    return f"{registry_host}/{repository}{separator}{reference}"


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return error.read().decode(errors="replace").strip() or error.reason
    except OSError:
        return str(error.reason)


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _referenced_blobs(document: dict[str, Any]) -> list[str]:
    """Digests of the config and layers a manifest document names (entries that are not objects are skipped)."""
    layers = document.get("layers")
    candidates = [document.get("config"), *(layers if isinstance(layers, list) else [])]
    return [str(entry["digest"]) for entry in candidates if isinstance(entry, dict) and "digest" in entry]
