"""Signatures shaped as cosign and Notation push them, linked as they link them on a registry without the referrers
API: cosign tags (`sha256-<hex>.sig/.att`), and the referrers tag schema's index that Notation keeps up to date.

    signer = Signer(builder, registry.host, "team/app")
    signer.cosign(image)              # under sha256-<hex>.sig; signer.cosign(image, "att") for an attestation
    signer.notation(index)            # by digest, listed in the index tagged sha256-<hex>
    index, children, signer = signed_index(builder, host, "team/app", "1.0", ["linux/amd64", "linux/arm64"])

Shapes, not signatures: nothing here holds a key (testbed/signing.py runs the real tools). The tags are
testbed.images' `cosign_tag` and `referrers_tag`, the oracle the product's tag names are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from importer.core.referrers import referrers_in_index
from testbed.images import DSSE_ENVELOPE, Descriptor, ImageBuilder, children_of, cosign_tag, multi, referrers_tag
from testbed.push import PushError, fetch_manifest, push


@dataclass
class Signer:
    """Pushes signatures next to images in one repository, the way cosign and Notation do without the referrers API."""

    builder: ImageBuilder
    host: str
    repository: str
    index_tags: bool = True  # False: a registry with the referrers API, which needs no referrers tag

    def cosign(self, subject: Descriptor, suffix: str = "sig", *, seed: str = "") -> Descriptor:
        """A cosign signature (`sig`) or attestation (`att`) of `subject`, under its cosign tag."""
        options = {"layer_media_type": DSSE_ENVELOPE} if suffix == "att" else {}
        artifact = self.builder.cosign_artifact(subject, seed=seed, **options)
        push(self.builder, artifact, self.host, self.repository, cosign_tag(subject, suffix))
        return artifact

    def notation(self, subject: Descriptor, *, seed: str = "") -> Descriptor:
        """A Notation signature of `subject`, pushed by digest and listed in the referrers tag's index."""
        signature = self.builder.notation_signature(subject, seed=seed)
        push(self.builder, signature, self.host, self.repository, None)
        if self.index_tags:
            listed = self._listed(subject) + [signature]
            push(self.builder, self.builder.referrers_index(listed), self.host, self.repository,
                 referrers_tag(subject.digest))
        return signature

    def _listed(self, subject: Descriptor) -> list[Descriptor]:
        try:
            raw = fetch_manifest(self.host, self.repository, referrers_tag(subject.digest)).body
        except PushError:
            return []
        return [Descriptor(r.media_type, r.digest, r.size, artifact_type=r.artifact_type,
                           annotations=dict(r.annotations) or None) for r in referrers_in_index(raw)]


def signed_index(builder: ImageBuilder, host: str, repository: str, tag: str, platforms: Sequence[str], *,
                 sign_children: bool = True, seed: str = "", index_tags: bool = True,
                 ) -> tuple[Descriptor, list[Descriptor], Signer]:
    """An index of `platforms` pushed as repository:tag, signed by Notation (the index) and by cosign (each child,
    unless `sign_children` is False, as `cosign sign` without `--recursive` leaves them)."""
    index = multi(builder, platforms, seed=seed)
    push(builder, index, host, repository, tag)
    signer = Signer(builder, host, repository, index_tags=index_tags)
    signer.notation(index)
    children = children_of(builder, index)
    if sign_children:
        for child in children:
            signer.cosign(child)
    return index, children, signer
