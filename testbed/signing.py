"""The real cosign and notation CLIs, wrapped for tests: sign and verify images on loopback registries.

    cosign = Cosign(tmp_path / "cosign", require_tool("cosign"))        # a fresh key pair in a private directory
    cosign.sign("127.0.0.1:PORT/team/app@sha256:…")                     # a `sha256-<hex>.sig` tag
    cosign.verify("127.0.0.1:PORT/team/app@sha256:…")                   # Verification(ok=True, output="…")
    notation = Notation(tmp_path / "notation", require_tool("notation"))  # a test CA, a key, a trust policy
    notation.sign(reference); notation.verify(reference).ok

Each tool runs with a private HOME (and XDG_CONFIG_HOME, XDG_CACHE_HOME, DOCKER_CONFIG, TUF_ROOT, TMPDIR) under its
own directory, in an environment built from scratch: the user's ~/.docker, ~/.sigstore and ~/.config/notation are
never read or written, and no COSIGN_*, SIGSTORE_*, NOTATION_* variable of the caller leaks in (COSIGN_REPOSITORY
would send signatures elsewhere). HTTP_PROXY and HTTPS_PROXY point at a closed loopback port: Go never proxies
loopback hosts, so registries on 127.0.0.1 answer and anything else fails at once. That matters: `cosign verify`
tries to fetch Sigstore's TUF root from tuf-repo-cdn.sigstore.dev on every run (it warns and goes on without it).

References must be by digest (both tools warn about tags: a tag may move between signing and verifying) and on a
loopback host, since the flags that allow plain HTTP are always on. Every call has a timeout; a tool that fails
raises `SigningToolError` with its stderr, except the verify calls, which return `Verification(ok, output)`.

What they write (cosign v2.6.5, notation v1.3.2, distribution 2.8 and v3.1.2 alike, since neither registry serves
the OCI referrers API: `GET /v2/<name>/referrers/<digest>` answers 404 "404 page not found"):

- cosign, mode "legacy" (the default): an image manifest tagged `sha256-<hex>.sig` (config
  `application/vnd.oci.image.config.v1+json`, one `application/vnd.dev.cosign.simplesigning.v1+json` layer per
  signature, the signature in its `dev.cosignproject.cosign/signature` annotation; no `subject`). Another key's
  signature appends a layer; the same key again adds nothing (cosign finds its own signature and skips). `attest`
  writes `sha256-<hex>.att` (`application/vnd.dsse.envelope.v1+json` layers, annotated with `predicateType`).
- cosign, mode "oci-1-1" (`COSIGN_EXPERIMENTAL=1 --registry-referrers-mode=oci-1-1`; verify needs
  `--experimental-oci11`, which also falls back to `.sig` tags): a manifest with `subject` and `artifactType`
  `application/vnd.dev.cosign.artifact.sig.v1+json` (its config has that media type too), listed in the
  referrers tag schema: an index tagged `sha256-<hex>`.
- cosign, mode "bundle" (`--new-bundle-format`; verify needs `--new-bundle-format` and a trusted root, here an empty
  one): a manifest with `subject`, `artifactType` `application/vnd.dev.sigstore.bundle.v0.3+json`, an empty config
  and the bundle as its layer, in the `sha256-<hex>` index — whose entry says `artifactType`
  `application/vnd.oci.empty.v1+json`, not the manifest's own. Once a bundle refers to a digest, cosign's plain
  verify and verify-attestation look only at bundles: without a trusted root they stop with "trusted root is
  required when using new bundle format". Keep the modes on different images.
- notation: a manifest with `subject`, config `application/vnd.cncf.notary.signature` (the 2-byte `{}` blob),
  one `application/jose+json` layer, no top-level `artifactType`; listed in the `sha256-<hex>` index with
  `artifactType` `application/vnd.cncf.notary.signature`. `--force-referrers-tag` (default true) always uses that
  index; with false, notation pushes the manifest, sees no `OCI-Subject` header in the answer and falls back to
  the same index. cosign (oci-1-1, bundle) and notation share the one index per digest, each adding its entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

TOOL_TIMEOUT_SECONDS = 120
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there, so a non-loopback request fails fast
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
COSIGN_PASSWORD = "platform-guard-test-key"
# A trusted root with nothing in it: enough for `--new-bundle-format` verification with a key and no transparency log.
EMPTY_TRUSTED_ROOT = {
    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "tlogs": [],
    "certificateAuthorities": [],
    "ctlogs": [],
    "timestampAuthorities": [],
}

CosignMode = Literal["legacy", "oci-1-1", "bundle"]
COSIGN_MODES: tuple[CosignMode, ...] = ("legacy", "oci-1-1", "bundle")


class SigningToolError(RuntimeError):
    """cosign or notation failed (the message has the command, its exit status and its stderr) or timed out."""


class Verification(NamedTuple):
    """What a verify call found: whether the tool accepted the signature, and everything it printed."""

    ok: bool
    output: str


class _Tool:
    """One CLI with a private home directory and a clean environment."""

    name = "tool"

    def __init__(self, home: Path, binary: Path) -> None:
        self.home = Path(home).resolve()
        self.binary = Path(binary)
        for directory in (self.home, self.home / ".config", self.home / ".cache", self.home / ".docker",
                          self.home / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The subprocess environment: built from scratch, pointing every config lookup into `home`."""
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "DOCKER_CONFIG": str(self.home / ".docker"),
            "TUF_ROOT": str(self.home / ".sigstore"),
            "TMPDIR": str(self.home / "tmp"),
            "HTTP_PROXY": CLOSED_PROXY,
            "HTTPS_PROXY": CLOSED_PROXY,
            "NO_PROXY": "",
        }
        environment.update(extra or {})
        return environment

    def run(
        self, arguments: Sequence[str], *, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the tool in `home` and return what it did, whatever its exit status; raises only on a timeout."""
        command = [str(self.binary), *arguments]
        try:
            return subprocess.run(
                command,
                cwd=self.home,
                env=self.environment(extra_env),
                capture_output=True,
                text=True,
                timeout=TOOL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
            raise SigningToolError(
                f"{self.name} {' '.join(arguments)} did not finish within {TOOL_TIMEOUT_SECONDS} s: {stderr.strip()}"
            ) from None

    def check(self, arguments: Sequence[str], *, extra_env: Mapping[str, str] | None = None) -> str:
        """Run the tool; raise `SigningToolError` with its stderr unless it exits 0; return its stdout."""
        completed = self.run(arguments, extra_env=extra_env)
        if completed.returncode != 0:
            raise SigningToolError(
                f"{self.name} {' '.join(arguments)} failed (exit {completed.returncode}): "
                f"{(completed.stderr or completed.stdout).strip()}"
            )
        return completed.stdout

    def verification(self, arguments: Sequence[str], *, extra_env: Mapping[str, str] | None = None) -> Verification:
        completed = self.run(arguments, extra_env=extra_env)
        return Verification(ok=completed.returncode == 0, output=f"{completed.stdout}{completed.stderr}".strip())


class Cosign(_Tool):
    """cosign with a key pair of its own (`cosign.key`, `cosign.pub`, password-protected) in `home`."""

    name = "cosign"

    def __init__(self, home: Path, binary: Path) -> None:
        super().__init__(home, binary)
        self.key = self.home / "cosign.key"
        self.public_key = self.home / "cosign.pub"
        self.trusted_root = self.home / "trusted_root.json"
        self.check(["generate-key-pair"])
        self.trusted_root.write_text(json.dumps(EMPTY_TRUSTED_ROOT))

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return super().environment({"COSIGN_PASSWORD": COSIGN_PASSWORD, **(extra or {})})

    def sign(self, reference: str, *, mode: CosignMode = "legacy", recursive: bool = False) -> None:
        """Sign the image (with `recursive`, an index and every manifest it lists) and push the signature."""
        arguments = ["sign", "--key", str(self.key), *_cosign_write_flags(mode)]
        if recursive:
            arguments.append("--recursive")
        self.check([*arguments, checked_reference(reference)], extra_env=_cosign_env(mode))

    def verify(self, reference: str, *, mode: CosignMode = "legacy") -> Verification:
        """Whether a signature made with this key, stored the `mode` way, is there for the image."""
        arguments = ["verify", "--key", str(self.public_key), *self._verify_flags(mode, "--experimental-oci11")]
        return self.verification([*arguments, checked_reference(reference)], extra_env=_cosign_env(mode))

    def attest(
        self,
        reference: str,
        predicate: Mapping[str, object] | bytes,
        *,
        predicate_type: str = "spdxjson",
        mode: Literal["legacy", "bundle"] = "legacy",
    ) -> None:
        """Attach an in-toto attestation (for `spdxjson`, an SPDX SBOM) signed with this key.

        `predicate_type` is a cosign shorthand (spdxjson, cyclonedx, slsaprovenance, vuln, ...) or a URI. cosign
        v2.6.5's `attest` has no OCI 1.1 mode: "legacy" writes `sha256-<hex>.att`, "bundle" a bundle referrer.
        """
        if mode not in ("legacy", "bundle"):
            raise ValueError(f"mode={mode!r}: cosign attest writes 'legacy' or 'bundle'")
        content = predicate if isinstance(predicate, bytes) else json.dumps(predicate).encode()
        predicate_file = self.home / "tmp" / "predicate.json"
        predicate_file.write_bytes(content)
        arguments = ["attest", "--key", str(self.key), "--type", predicate_type, "--predicate", str(predicate_file),
                     *_cosign_write_flags(mode)]
        self.check([*arguments, checked_reference(reference)])

    def verify_attestation(
        self, reference: str, *, predicate_type: str = "spdxjson", mode: Literal["legacy", "bundle"] = "legacy"
    ) -> Verification:
        """Whether an attestation of `predicate_type` signed with this key is there for the image."""
        arguments = ["verify-attestation", "--key", str(self.public_key), "--type", predicate_type,
                     *self._verify_flags(mode, None)]
        return self.verification([*arguments, checked_reference(reference)])

    def _verify_flags(self, mode: CosignMode, oci11_flag: str | None) -> list[str]:
        flags = ["--insecure-ignore-tlog", "--allow-insecure-registry", "--allow-http-registry"]
        if mode == "oci-1-1" and oci11_flag:
            flags.append(oci11_flag)
        elif mode == "bundle":
            flags += ["--new-bundle-format", "--trusted-root", str(self.trusted_root)]
        elif mode not in COSIGN_MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(COSIGN_MODES)}")
        return flags


def _cosign_write_flags(mode: CosignMode) -> list[str]:
    """Flags of `cosign sign` / `attest` for a loopback HTTP registry, no transparency log, no prompt; and the mode."""
    flags = ["--tlog-upload=false", "--yes", "--allow-insecure-registry", "--allow-http-registry"]
    if mode == "oci-1-1":
        flags.append("--registry-referrers-mode=oci-1-1")
    elif mode == "bundle":
        flags.append("--new-bundle-format")
    elif mode != "legacy":
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(COSIGN_MODES)}")
    return flags


def _cosign_env(mode: CosignMode) -> dict[str, str]:
    """`--registry-referrers-mode` is experimental: cosign refuses it without COSIGN_EXPERIMENTAL=1."""
    return {"COSIGN_EXPERIMENTAL": "1"} if mode == "oci-1-1" else {}


class Notation(_Tool):
    """notation with a test CA and signing key of its own (`notation cert generate-test --default`) and a trust
    policy that trusts that CA for every registry scope, at the strict level."""

    name = "notation"

    def __init__(self, home: Path, binary: Path, *, key_name: str = "platform-guard-test") -> None:
        super().__init__(home, binary)
        self.key_name = key_name
        self.check(["cert", "generate-test", "--default", key_name])
        policy = {
            "version": "1.0",
            "trustPolicies": [
                {
                    "name": "platform-guard-tests",
                    "registryScopes": ["*"],
                    "signatureVerification": {"level": "strict"},
                    "trustStores": [f"ca:{key_name}"],
                    "trustedIdentities": ["*"],
                }
            ],
        }
        policy_file = self.home / "trustpolicy.json"
        policy_file.write_text(json.dumps(policy, indent=2))
        # `policy import` rather than writing into the config directory: the file name there changed across
        # releases (notation 1.3.2 reads trustpolicy.json, not trustpolicy.oci.json).
        self.check(["policy", "import", "--force", str(policy_file)])

    def sign(self, reference: str, *, force_referrers_tag: bool = True) -> None:
        """Sign the image with the default key (JWS envelope) and push the signature.

        `force_referrers_tag=False` lets notation use the referrers API where the registry has it.
        """
        arguments = ["sign", "--insecure-registry", f"--force-referrers-tag={str(force_referrers_tag).lower()}"]
        self.check([*arguments, checked_reference(reference)])

    def verify(self, reference: str) -> Verification:
        """Whether a signature that the trust policy accepts is there for the image."""
        return self.verification(["verify", "--insecure-registry", checked_reference(reference)])


def checked_reference(reference: str) -> str:
    """`reference` itself when it is `HOST/REPO@sha256:<64 hex>` on a loopback host; ValueError otherwise."""
    name, separator, digest = reference.partition("@")
    if not separator or not digest.startswith("sha256:") or len(digest) != len("sha256:") + 64:
        raise ValueError(f"{reference!r}: sign and verify by digest (HOST/REPO@sha256:<hex>), not by tag")
    host = name.split("/", 1)[0]
    hostname = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if hostname not in LOOPBACK_HOSTS and not hostname.startswith("127."):
        raise ValueError(f"{reference!r}: tests sign only on registries on this machine, not {host!r}")
    return reference
