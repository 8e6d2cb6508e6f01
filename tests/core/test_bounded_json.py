"""importer.core.bounded_json: nesting measured without recursion, deep documents refused before any parser recurses,
and the manifest and config parsers of importer.core.manifests refusing deep registry content with a ManifestError."""

from __future__ import annotations

import json
import time

import pytest

from importer.core.bounded_json import MAX_JSON_DEPTH, JsonTooDeep, loads, nesting_depth
from importer.core.manifests import ManifestError, parse_manifest, platform_from_config


def deep(depth: int, kind: str, inner: str = "1") -> str:
    """JSON text of `depth` arrays or objects around `inner`."""
    return ("[" * depth + inner + "]" * depth) if kind == "array" else ('{"k":' * depth + inner + "}" * depth)


DEPTHS = {
    "scalar": ("1", 0),
    "string-of-brackets": ('"[[[{{{"', 0),
    "empty-array": ("[]", 1),
    "manifest-like": ('{"manifests":[{"platform":{"os.features":["a"]}}]}', 5),
    "brackets-in-keys-and-values": ('{"[[":"]]]]","{":["}"]}', 2),
    "escaped-quote-then-bracket": ('["\\"[[["]', 1),
    "escaped-backslash-ends-string": ('["\\\\",[[]]]', 3),
    "escaped-backslash-then-escaped-quote": ('["\\\\\\"[[",[]]', 2),
    "unicode-escape-of-a-quote": ('["\\u0022[[["]', 1),
    "non-ascii-text": ('["é[[", ["ü"]]', 2),
    "utf-16-bytes": ("[[[]]]".encode("utf-16"), 3),
    "sixty-four-arrays": (deep(64, "array"), 64),
    "sixty-five-objects": (deep(65, "object"), 65),
    "siblings-do-not-add-up": ("[" + ",".join(["[[]]"] * 1000) + "]", 3),
    "mebibyte-of-openers": ("[" * (1 << 20), 1 << 20),
}


@pytest.mark.parametrize(("text", "depth"), DEPTHS.values(), ids=DEPTHS.keys())
def test_nesting_depth_counts_open_arrays_and_objects_outside_strings(text: str | bytes, depth: int) -> None:
    assert nesting_depth(text if isinstance(text, bytes) else text.encode()) == depth
    if isinstance(text, str):
        assert nesting_depth(text) == depth


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [1, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 976, 990, 100_000])
def test_loads_parses_up_to_the_limit_and_refuses_past_it(kind: str, depth: int) -> None:
    text = deep(depth, kind)
    if depth <= MAX_JSON_DEPTH:
        assert loads(text) == json.loads(text)
    else:
        with pytest.raises(JsonTooDeep, match=rf"^JSON nested too deeply \(more than {MAX_JSON_DEPTH} levels"):
            loads(text)


def test_refusal_is_a_value_error_and_json_errors_stay_json_errors() -> None:
    """Callers keep their one `except ValueError` for "not JSON"."""
    assert issubclass(JsonTooDeep, ValueError)
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"a": ')


@pytest.mark.parametrize(
    "text",
    [b"[" * (1 << 20), b"{" * (1 << 20), b'["' + b'\\"' * (1 << 19) + b'"]', b'"' + b'\\"' * (1 << 19),
     b"[" + b'"[",' * (1 << 18) + b"1]"],
    ids=["openers", "braces", "escaped-quotes", "unterminated-escaped-quotes", "bracket-strings"],
)
def test_measuring_a_mebibyte_is_linear(text: bytes) -> None:
    """The worst mebibyte takes well under a second (generous bound: a quadratic scan would take minutes)."""
    started = time.perf_counter()
    nesting_depth(text)
    assert time.perf_counter() - started < 5


MANIFEST_HEAD = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"x":'


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH + 1, 976, 5000])
def test_deep_manifest_is_a_manifest_error(kind: str, depth: int) -> None:
    """A registry may serve any bytes as a manifest: past the limit it is a ManifestError naming it."""
    raw = (MANIFEST_HEAD + deep(depth - 1, kind) + "}").encode()
    if depth <= MAX_JSON_DEPTH:
        assert parse_manifest(raw).manifests == ()  # type: ignore[union-attr]
    else:
        with pytest.raises(ManifestError, match=r"^manifest is not valid JSON \(JSON nested too deeply"):
            parse_manifest(raw)


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH + 1, 976, 5000])
def test_deep_image_config_is_a_manifest_error(kind: str, depth: int) -> None:
    raw = ('{"os":"linux","architecture":"amd64","history":' + deep(depth - 1, kind) + "}").encode()
    if depth <= MAX_JSON_DEPTH:
        assert str(platform_from_config(raw)) == "linux/amd64"
    else:
        with pytest.raises(ManifestError, match=r"^config is not valid JSON \(JSON nested too deeply"):
            platform_from_config(raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 976, 5000])
def test_deep_referrers_index_on_the_registry_is_replaced(depth: int) -> None:
    """The referrers tag's index is whatever the registry holds: one nested past the limit is replaced by a fresh
    index listing our artifact, as any other content that is not an index is."""
    from importer.core.manifests import Descriptor
    from importer.core.quarantine_names import QuarantineOrigin
    from importer.core.quarantine_origin import digest_of, origin_artifact
    from importer.core.referrers import index_entry, referrers_in_index, with_entries

    digest = "sha256:" + "ab" * 32
    artifact = origin_artifact(QuarantineOrigin("team/app", "1", digest), kept_tag="1.sha256-" + "ab" * 32,
                               subject=Descriptor("application/vnd.oci.image.manifest.v1+json", digest, 10))
    hostile = ('{"schemaVersion":2,"manifests":[' + deep(depth - 2, "object") + "]}").encode()
    replaced = with_entries(hostile, [index_entry(artifact, "application/vnd.oci.image.manifest.v1+json",
                                                  digest_of(artifact))])
    assert replaced is not None and [entry.digest for entry in referrers_in_index(replaced)] == [digest_of(artifact)]


@pytest.mark.parametrize(("inner", "refused"), [(MAX_JSON_DEPTH - 1, False), (MAX_JSON_DEPTH, True)],
                         ids=["deepest-allowed", "one-too-deep"])
def test_depth_is_carried_across_the_measuring_chunks(inner: int, refused: bool) -> None:
    """The deep part comes after 80,000 brackets of siblings: the depth is tracked across the chunks it is measured
    in, so the limit is the same wherever the deep part sits."""
    text = "[" + "[]," * 40_000 + deep(inner, "array") + "]"
    if refused:
        with pytest.raises(JsonTooDeep):
            loads(text)
    else:
        assert len(loads(text)) == 40_001
