"""A copy into a guarded registry, judged by the guard's policy before anything is written.

    gate = CopyGate(policy, source, "library/nginx", target_repository="team/nginx", target_tag="1.27")
    result = copy_image(source, "library/nginx", "1.27", target, "team/nginx", "1.27", ..., vet=gate)
    # CopyRefused (nothing written) when the tag would hold a violation; gate.verdict says what was decided

What the target tag would hold is the copy's own plan, which copy_image hands to the gate once it has read the source
and before the first blob: the whole source, the new index of the selected children, or the flattened child. It is
judged exactly as the guard will judge the push (importer.app.inspection.evaluate, the same rule for the target
repository, the same tag), reading the planned manifests from memory and everything else (configs, nested indexes)
from the source, which is where the copy takes them from. So what the guard ignores is let through here too: an
ignored repository, the quarantine repository, signatures, attestations, SBOMs and other artifacts. A push by digest
only (no tag) is not judged: the guard does not judge untagged pushes.

`force=True` judges the same but never refuses: the caller copies anyway and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from importer.app.inspection import evaluate
from importer.core.decide import VIOLATION, Facts, Verdict
from importer.core.manifests import FetchedManifest, ManifestError
from importer.core.policy import Policy
from importer.ports.registry import CopyError, Registry

__all__ = ["CopyGate", "CopyRefused"]


class CopyRefused(Exception):
    """The copy would leave a tag the policy calls a violation; nothing was written."""

    def __init__(self, message: str, facts: Facts | None, verdict: Verdict) -> None:
        super().__init__(message)
        self.facts = facts
        self.verdict = verdict


class _PlannedTarget:
    """The target as it would be after the copy, for reading: the planned manifests, the rest from the source.

    Only what inspection reads is offered (manifests and blobs); every read of the source is verified by its client.
    """

    def __init__(self, source: Registry, source_repository: str, top: FetchedManifest,
                 children: Sequence[FetchedManifest]) -> None:
        self._source = source
        self._source_repository = source_repository
        self._manifests = {child.digest: child for child in children}
        self._manifests[top.digest] = top

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        planned = self._manifests.get(reference)
        if planned is not None:
            return planned
        return self._source.get_manifest(self._source_repository, reference)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        return self._source.get_blob(self._source_repository, digest, max_bytes=max_bytes)


class CopyGate:
    """Judges a planned copy for `target_repository:target_tag` under `policy` (pass it as copy_image's `vet`).

    After the call, `facts` and `verdict` hold what was decided (`verdict` None: not judged, a push by digest only).
    A violation raises CopyRefused unless `force`; reading what cannot be judged raises CopyError."""

    def __init__(
        self, policy: Policy, source: Registry, source_repository: str, *, target_repository: str,
        target_tag: str | None, force: bool = False,
    ) -> None:
        self.policy = policy
        self.source = source
        self.source_repository = source_repository
        self.target_repository = target_repository
        self.target_tag = target_tag
        self.force = force
        self.facts: Facts | None = None
        self.verdict: Verdict | None = None

    @property
    def violation(self) -> bool:
        """Whether the target tag would be (or, with force, now is) a violation of the policy."""
        return self.verdict is not None and self.verdict.verdict == VIOLATION

    def __call__(self, top: FetchedManifest, children: Sequence[FetchedManifest]) -> None:
        if self.target_tag is None:
            return
        planned = _PlannedTarget(self.source, self.source_repository, top, children)
        try:
            # judged by the planned top's digest, under the tag it would get
            self.facts, self.verdict = evaluate(
                self.policy, planned, self.target_repository, top.digest, tag=self.target_tag
            )
        except ManifestError as error:
            raise CopyError(
                f"cannot judge what {self.target_repository}:{self.target_tag} would hold: {error}"
            ) from None
        if self.violation and not self.force:
            assert self.verdict is not None
            raise CopyRefused(
                f"refused: {self.target_repository}:{self.target_tag} would violate the policy: {self.verdict.reason}",
                self.facts,
                self.verdict,
            )
