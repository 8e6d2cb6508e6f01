"""The real cosign and notation against both registry flavours: they sign, verify, refuse, and leave known shapes.

Each signing test runs on distribution 2.8 and on distribution v3 (`any_registry`), with tools built by
scripts/setup (testbed/tools.py): without them the tests skip, or fail under PLATFORM_GUARD_REQUIRE_TOOLS=1. What
each tool left in the registry (tags, the referrers API's answer, the referrers tag index, the signature manifest's
media types) is asserted, and printed in the session summary under "signing tools". The `cosign` and `notation`
fixtures (tests/conftest.py) keep one key each for the whole session, each test signing in a registry of its own; the
"someone else" test makes its own second signers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed.images import OCI_EMPTY, Descriptor, ImageBuilder, cosign_tag, multi, referrers_tag, single
from testbed.push import fetch_manifest, list_tags, push
from testbed.registry import LocalRegistry
from testbed.signing import Cosign, CosignMode, Notation, checked_reference
from testbed.tools import REQUIRE_VARIABLE, TOOLS_DIR_VARIABLE, read_lock, require_tool
from tests.figures import report

pytestmark = pytest.mark.timeout(300)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# Written out here rather than imported: these tests are the ground truth the product's media types are checked by.
COSIGN_SIG_CONFIG = "application/vnd.dev.cosign.artifact.sig.v1+json"  # cosign's OCI 1.1 mode
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
SPDX_SBOM: dict[str, Any] = {
    "spdxVersion": "SPDX-2.3",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "platform-guard-test",
    "dataLicense": "CC0-1.0",
    "documentNamespace": "https://platform-guard.invalid/spdx/test",
    "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: platform-guard-tests"]},
    "packages": [],
}


# -- what a registry holds for a digest -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryState:
    """What the registry shows about the signatures of one subject digest."""

    tags: frozenset[str]
    referrers_status: int
    referrers_index: list[dict[str, Any]]  # the entries of the `sha256-<hex>` index, [] without one

    def entry_types(self) -> list[str | None]:
        return [entry.get("artifactType") for entry in self.referrers_index]

    def summary(self, subject: str) -> str:
        tags = sorted(tag.replace(subject.removeprefix("sha256:"), "<hex>") for tag in self.tags)
        return f"tags {tags}; referrers API {self.referrers_status}; tag index artifactTypes {self.entry_types()}"


def registry_state(registry: LocalRegistry, repository: str, subject: str) -> RegistryState:
    try:
        with urllib.request.urlopen(f"{registry.url}/v2/{repository}/referrers/{subject}", timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    tags = frozenset(list_tags(registry.host, repository))
    index_tag = referrers_tag(subject)
    entries = fetch_manifest(registry.host, repository, index_tag).json()["manifests"] if index_tag in tags else []
    return RegistryState(tags=tags, referrers_status=status, referrers_index=entries)


def manifest(registry: LocalRegistry, repository: str, reference: str) -> dict[str, Any]:
    return fetch_manifest(registry.host, repository, reference).json()


def pushed(builder: ImageBuilder, registry: LocalRegistry, repository: str, image: Descriptor) -> str:
    """Push `image` as `repository:1.0`; the digest reference to sign it by."""
    digest = push(builder, image, registry.host, repository, "1.0")
    return f"{registry.host}/{repository}@{digest}"


def shape(document: dict[str, Any]) -> dict[str, Any]:
    """A signature manifest's media types, for comparing with what the product expects."""
    return {
        "mediaType": document.get("mediaType"),
        "artifactType": document.get("artifactType"),
        "config": document["config"]["mediaType"],
        "layers": [layer["mediaType"] for layer in document["layers"]],
        "subject": document.get("subject", {}).get("digest"),
    }


# -- both tools, both flavours -----------------------------------------------------------------------------------


def test_cosign_and_notation_sign_verify_and_refuse_an_unsigned_image(
    any_registry: LocalRegistry, builder: ImageBuilder, cosign: Cosign, notation: Notation
) -> None:
    """Both signatures on one image verify; a different, unsigned image fails both verifications."""
    signed_image, unsigned_image = single(builder, "linux/amd64"), single(builder, "linux/amd64", seed="unsigned")
    signed = pushed(builder, any_registry, "team/app", signed_image)
    unsigned = pushed(builder, any_registry, "team/other", unsigned_image)

    cosign.sign(signed)
    after_cosign = registry_state(any_registry, "team/app", signed_image.digest)
    notation.sign(signed)
    after_notation = registry_state(any_registry, "team/app", signed_image.digest)

    assert cosign.verify(signed).ok, cosign.verify(signed).output
    assert notation.verify(signed).ok, notation.verify(signed).output
    cosign_refusal, notation_refusal = cosign.verify(unsigned), notation.verify(unsigned)
    assert not cosign_refusal.ok and "no signatures found" in cosign_refusal.output
    assert not notation_refusal.ok and "no signature is associated" in notation_refusal.output

    sig_tag, index_tag = cosign_tag(signed_image, "sig"), referrers_tag(signed_image)
    assert after_cosign == RegistryState(frozenset({"1.0", sig_tag}), 404, [])
    assert after_notation.tags == {"1.0", sig_tag, index_tag}
    assert after_notation.referrers_status == 404
    assert after_notation.entry_types() == [NOTARY_SIGNATURE]
    cosign_manifest = manifest(any_registry, "team/app", sig_tag)
    notation_manifest = manifest(any_registry, "team/app", after_notation.referrers_index[0]["digest"])
    assert shape(cosign_manifest) == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": None,
        "config": "application/vnd.oci.image.config.v1+json",
        "layers": ["application/vnd.dev.cosign.simplesigning.v1+json"], "subject": None,
    }
    assert shape(notation_manifest) == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": None,
        "config": NOTARY_SIGNATURE, "layers": ["application/jose+json"], "subject": signed_image.digest,
    }
    flavour = f"distribution {any_registry.flavour}"
    report("signing tools", f"{flavour}, after cosign sign: {after_cosign.summary(signed_image.digest)}")
    report("signing tools", f"{flavour}, after notation sign: {after_notation.summary(signed_image.digest)}")


def test_a_signature_by_someone_else_does_not_verify(
    any_registry: LocalRegistry, builder: ImageBuilder, cosign: Cosign, notation: Notation, tmp_path: Path
) -> None:
    """Signed, but with another key (cosign) or by another CA (notation): verification fails."""
    signed = pushed(builder, any_registry, "team/app", single(builder, "linux/arm64"))
    stranger_cosign = Cosign(tmp_path / "stranger-cosign", require_tool("cosign"))
    stranger_notation = Notation(tmp_path / "stranger-notation", require_tool("notation"), key_name="stranger")
    stranger_cosign.sign(signed)
    stranger_notation.sign(signed)

    cosign_result, notation_result = cosign.verify(signed), notation.verify(signed)
    assert not cosign_result.ok and "no matching signatures" in cosign_result.output
    assert not notation_result.ok and "signature verification failed" in notation_result.output
    assert stranger_cosign.verify(signed).ok and stranger_notation.verify(signed).ok


# -- cosign's storage modes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignModeCase:
    mode: CosignMode
    tag_suffix: str | None  # the cosign tag written (`.sig`), or None
    index_types: list[str]  # artifactTypes the referrers tag index lists
    artifact_type: str | None  # the signature manifest's own artifactType
    config: str
    refused_as: tuple[CosignMode, ...]  # verify modes that do not find it (`--experimental-oci11` also reads `.sig`)


COSIGN_MODE_CASES = {
    "legacy-sig-tag": CosignModeCase("legacy", "sig", [], None, "application/vnd.oci.image.config.v1+json", ()),
    "oci-1-1-referrer": CosignModeCase("oci-1-1", None, [COSIGN_SIG_CONFIG], COSIGN_SIG_CONFIG, COSIGN_SIG_CONFIG,
                                       ("legacy",)),
    "sigstore-bundle-referrer": CosignModeCase("bundle", None, [OCI_EMPTY], SIGSTORE_BUNDLE_V03, OCI_EMPTY,
                                               ("legacy", "oci-1-1")),
}


@pytest.mark.parametrize("case_id", list(COSIGN_MODE_CASES), ids=list(COSIGN_MODE_CASES))
def test_cosign_modes_store_signatures_where_expected(
    any_registry: LocalRegistry, builder: ImageBuilder, cosign: Cosign, case_id: str
) -> None:
    """Each mode leaves its own tags, is listed in the referrers tag index or not, and verifies in its own mode
    (and, for a `.sig` tag, also with --experimental-oci11, which falls back to it) but not in the others."""
    case = COSIGN_MODE_CASES[case_id]
    image = single(builder, "linux/amd64", seed=case_id)
    signed = pushed(builder, any_registry, "team/modes", image)
    cosign.sign(signed, mode=case.mode)

    state = registry_state(any_registry, "team/modes", image.digest)
    expected_tags = {"1.0", cosign_tag(image, case.tag_suffix) if case.tag_suffix else referrers_tag(image)}
    assert state.tags == expected_tags
    assert state.referrers_status == 404
    assert state.entry_types() == case.index_types
    signature_reference = cosign_tag(image, "sig") if case.tag_suffix else state.referrers_index[0]["digest"]
    signature = manifest(any_registry, "team/modes", signature_reference)
    assert signature.get("artifactType") == case.artifact_type
    assert signature["config"]["mediaType"] == case.config
    assert signature.get("subject", {}).get("digest") == (None if case.tag_suffix else image.digest)

    assert cosign.verify(signed, mode=case.mode).ok
    for other_mode in case.refused_as:
        refusal = cosign.verify(signed, mode=other_mode)
        assert not refusal.ok, f"a {case.mode} signature verified as {other_mode}"
        report("signing tools", f"cosign mode {case.mode}, verified as {other_mode}: {refusal.output.splitlines()[-1]}")
    flavour = f"distribution {any_registry.flavour}"
    report("signing tools", f"{flavour}, cosign mode {case.mode}: {state.summary(image.digest)}"
           f"; manifest {json.dumps(shape(signature))}")


def test_cosign_signs_an_index_and_its_children_with_recursive(
    any_registry: LocalRegistry, builder: ImageBuilder, cosign: Cosign
) -> None:
    index = multi(builder, ["linux/amd64", "linux/arm64"])
    signed = pushed(builder, any_registry, "team/multi", index)
    children = builder.document(index)["manifests"]
    cosign.sign(signed, recursive=True)

    expected = {"1.0", cosign_tag(index, "sig"), *(cosign_tag(child["digest"], "sig") for child in children)}
    assert set(list_tags(any_registry.host, "team/multi")) == expected
    for child in children:
        assert cosign.verify(f"{any_registry.host}/team/multi@{child['digest']}").ok


@pytest.mark.parametrize("mode", ["legacy", "bundle"], ids=["att-tag", "sigstore-bundle-referrer"])
def test_cosign_attestation_verifies_for_its_predicate_type_only(
    any_registry: LocalRegistry, builder: ImageBuilder, cosign: Cosign, mode: str
) -> None:
    """An SPDX SBOM attestation: verifies as spdxjson, not as cyclonedx, and not on another image."""
    image = single(builder, "linux/amd64", seed=f"sbom-{mode}")
    attested = pushed(builder, any_registry, "team/sbom", image)
    other = pushed(builder, any_registry, "team/plain", single(builder, "linux/amd64", seed=f"plain-{mode}"))
    cosign.attest(attested, SPDX_SBOM, predicate_type="spdxjson", mode=mode)  # type: ignore[arg-type]

    assert cosign.verify_attestation(attested, predicate_type="spdxjson", mode=mode).ok  # type: ignore[arg-type]
    wrong_type = cosign.verify_attestation(attested, predicate_type="cyclonedx", mode=mode)  # type: ignore[arg-type]
    assert not wrong_type.ok and "none of the attestations matched the predicate type" in wrong_type.output
    assert not cosign.verify_attestation(other, predicate_type="spdxjson", mode=mode).ok  # type: ignore[arg-type]
    state = registry_state(any_registry, "team/sbom", image.digest)
    if mode == "legacy":
        assert state.tags == {"1.0", cosign_tag(image, "att")}
        envelope = manifest(any_registry, "team/sbom", cosign_tag(image, "att"))
        assert [layer["mediaType"] for layer in envelope["layers"]] == ["application/vnd.dsse.envelope.v1+json"]
    else:
        assert state.tags == {"1.0", referrers_tag(image)}
        bundle = manifest(any_registry, "team/sbom", state.referrers_index[0]["digest"])
        assert bundle["artifactType"] == SIGSTORE_BUNDLE_V03
        assert bundle["annotations"]["dev.sigstore.bundle.predicateType"] == "https://spdx.dev/Document"
    flavour = f"distribution {any_registry.flavour}"
    report("signing tools", f"{flavour}, cosign attest ({mode}): {state.summary(image.digest)}")


# -- notation's referrers switch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [True, False], ids=["force-referrers-tag", "referrers-api-if-served"])
def test_notation_falls_back_to_the_referrers_tag_on_both_flavours(
    any_registry: LocalRegistry, builder: ImageBuilder, notation: Notation, force: bool
) -> None:
    """With or without --force-referrers-tag the registry ends up with the `sha256-<hex>` index: neither flavour
    serves the referrers API, which notation sees from the missing OCI-Subject header on its manifest push."""
    image = single(builder, "linux/amd64", seed=f"notation-{force}")
    signed = pushed(builder, any_registry, "team/notation", image)
    notation.sign(signed, force_referrers_tag=force)
    state = registry_state(any_registry, "team/notation", image.digest)
    assert state.tags == {"1.0", referrers_tag(image)}
    assert state.referrers_status == 404
    assert state.entry_types() == [NOTARY_SIGNATURE]
    assert notation.verify(signed).ok


# -- the wrappers' own rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "accepted"),
    [
        pytest.param("127.0.0.1:5000/team/app@sha256:" + "a" * 64, True, id="loopback-by-digest"),
        pytest.param("localhost:5000/team/app@sha256:" + "b" * 64, True, id="localhost-by-digest"),
        pytest.param("127.0.0.1:5000/team/app:1.0", False, id="by-tag"),
        pytest.param("127.0.0.1:5000/team/app@sha256:abc", False, id="short-digest"),
        pytest.param("registry.example/team/app@sha256:" + "c" * 64, False, id="remote-host"),
    ],
)
def test_references_must_be_digests_on_this_machine(reference: str, accepted: bool) -> None:
    if accepted:
        assert checked_reference(reference) == reference
    else:
        with pytest.raises(ValueError):
            checked_reference(reference)


# -- require_tool: skip or fail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequireCase:
    tool: str
    built: bool  # a fake executable is put where the tool belongs
    require: bool  # PLATFORM_GUARD_REQUIRE_TOOLS=1
    outcome: str  # what pytest reports: passed, skipped or failed
    message: str  # part of the skip or failure reason ("" when it passes)


def _not_built(tool: str) -> str:
    return f"{tool} is not built: run scripts/setup with Go ≥ {read_lock().go_minimum} installed"


REQUIRE_CASES = {
    "missing-tool-skips": RequireCase("cosign", False, False, "skipped", _not_built("cosign")),
    "missing-tool-fails-when-required": RequireCase("cosign", False, True, "failed", _not_built("cosign")),
    "built-tool-passes-when-required": RequireCase("notation", True, True, "passed", ""),
    "unpinned-tool-fails-even-unrequired": RequireCase("no-such-tool", False, False, "failed",
                                                       "no-such-tool is not pinned in scripts/tools.lock"),
    "unpinned-tool-fails-when-required": RequireCase("no-such-tool", False, True, "failed",
                                                     "no-such-tool is not pinned in scripts/tools.lock"),
}


@pytest.mark.parametrize("case_id", list(REQUIRE_CASES), ids=list(REQUIRE_CASES))
def test_require_tool_skips_or_fails_by_the_switch(tmp_path: Path, case_id: str) -> None:
    """A separate pytest run with an empty (or faked) tools cache: skipped, or failed with the setup hint."""
    case = REQUIRE_CASES[case_id]
    tools = tmp_path / "tools"
    if case.built:
        binary = read_lock().tools[case.tool].path_in(tools)
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    test_file = tmp_path / "test_needs_tool.py"
    test_file.write_text(textwrap.dedent(f"""
        from testbed.tools import require_tool

        def test_needs_tool():
            require_tool({case.tool!r})
    """))
    environment = {key: value for key, value in os.environ.items() if key != REQUIRE_VARIABLE}
    environment.update({TOOLS_DIR_VARIABLE: str(tools), "PYTHONPATH": str(REPOSITORY_ROOT)})
    if case.require:
        environment[REQUIRE_VARIABLE] = "1"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test_file)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )
    output = completed.stdout + completed.stderr
    assert f"1 {case.outcome}" in output, output
    assert completed.returncode == (1 if case.outcome == "failed" else 0), output
    assert case.message in output, output


# -- the tools themselves ------------------------------------------------------------------------------------------

# tool → arguments that make it print its version and exit 0
VERSION_ARGUMENTS: dict[str, list[str]] = {
    "crane": ["version"],
    "regctl": ["version"],
    "oras": ["version"],
    "registry": ["--version"],
    "cosign": ["version"],
    "notation": ["version"],
    "olareg": ["version"],
}


def test_every_pinned_tool_has_a_version_check() -> None:
    assert set(VERSION_ARGUMENTS) == set(read_lock().tools)


@pytest.mark.parametrize("tool", list(VERSION_ARGUMENTS), ids=list(VERSION_ARGUMENTS))
def test_each_tool_runs_and_was_built_from_its_pinned_module(tool: str, tmp_path: Path) -> None:
    """The binary starts, and the build information Go records in it (what `go version -m` prints) names the
    pinned package, module and version: a stale build at the right path would show here."""
    binary = require_tool(tool)
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    completed = subprocess.run([str(binary), *VERSION_ARGUMENTS[tool]], capture_output=True, text=True, timeout=60,
                               check=False, cwd=tmp_path, env=environment)
    assert completed.returncode == 0, completed.stderr
    pinned = read_lock().tools[tool]
    build_info = f"path\t{pinned.package}\nmod\t{pinned.module}\t{pinned.version}\t".encode()
    assert build_info in binary.read_bytes(), f"{binary} was not built from {pinned.module} {pinned.version}"
