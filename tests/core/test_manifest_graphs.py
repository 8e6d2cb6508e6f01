"""Work over manifest graphs is linear in the content: the walk budget, and index subsets of the largest indexes.

`WalkBudget` (importer.core.manifests) is the one budget of one walk: every descriptor visited counts, and a path of
nested indexes is bounded. `plan_subset`, `build_index` and `plan_import` (importer.core.selection) handle one index
level: on an index as large as a registry serves (4 MiB: about 19,000 children) they finish in well under a few
seconds; `build_index` compared every kept child with every child before, which took 140 s for 20,000.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from importer.core.manifests import (
    MAX_INDEX_DEPTH,
    MAX_WALK_DESCRIPTORS,
    FetchedManifest,
    Index,
    ManifestError,
    WalkBudget,
    parse_manifest,
)
from importer.core.media_types import OCI_INDEX, OCI_MANIFEST
from importer.core.platforms import parse
from importer.core.selection import CopyError, build_index, plan_import, plan_subset

CHILDREN = 19_000  # an index of about 4 MiB, the most a registry client accepts (MAX_MANIFEST_BYTES)
QUICK = 5.0  # seconds: generous for what now takes well under one


def large_index(children: int = CHILDREN) -> tuple[Index, bytes]:
    """An index of `children` image entries, alternately linux/amd64 and linux/arm64, each distinct."""
    entries = [{"mediaType": OCI_MANIFEST, "digest": f"sha256:{number:064x}", "size": 500,
                "platform": {"os": "linux", "architecture": "amd64" if number % 2 else "arm64"}}
               for number in range(children)]
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    index = parse_manifest(raw)
    assert isinstance(index, Index)
    return index, raw


@pytest.mark.parametrize(
    ("exclude", "platforms", "kept"),
    [
        pytest.param(("linux/s390x",), (), CHILDREN, id="nothing-excluded"),
        pytest.param(("linux/arm64",), (), CHILDREN // 2, id="half-excluded"),
        pytest.param((), ("linux/amd64",), 1, id="one-platform-chosen"),
    ],
)
def test_subsets_of_the_largest_index_are_linear(exclude: tuple[str, ...], platforms: tuple[str, ...],
                                                 kept: int) -> None:
    index, raw = large_index()
    started = time.monotonic()
    chosen = plan_subset(index, [parse(name) for name in platforms], exclude=exclude)
    written = build_index(index, raw, chosen)
    assert time.monotonic() - started < QUICK
    assert len(chosen) == kept
    rebuilt = parse_manifest(written)
    assert isinstance(rebuilt, Index) and list(rebuilt.manifests) == list(chosen)
    assert (written == raw) is (kept == CHILDREN)


def test_a_refused_subset_of_the_largest_index_is_quick_and_says_it_briefly() -> None:
    """The refusal names each distinct platform once (at most 20 of them), not every child."""
    index, _ = large_index()
    started = time.monotonic()
    with pytest.raises(CopyError) as raised:
        plan_subset(index, [parse("linux/arm64")], exclude=("linux/arm64",))
    assert time.monotonic() - started < QUICK
    assert str(raised.value) == ("platform linux/arm64 is offered only by children excluded by linux/arm64 "
                                 "(linux/arm64); the others offer: linux/amd64")


def test_build_index_keeps_every_entry_equal_to_a_kept_one() -> None:
    """Duplicate entries of a kept child stay (as before: kept means equal to a kept entry), in their order."""
    index, raw = large_index(6)
    doubled = json.loads(raw)
    doubled["manifests"] = doubled["manifests"] + doubled["manifests"][:2]
    raw = json.dumps(doubled).encode()
    index = parse_manifest(raw)
    assert isinstance(index, Index)
    written = parse_manifest(build_index(index, raw, (index.manifests[0], index.manifests[2])))
    assert isinstance(written, Index)
    assert [child.digest for child in written.manifests] == [index.manifests[n].digest for n in (0, 2, 6)]


def test_plan_import_refuses_an_index_past_the_walk_budget() -> None:
    """A server-side import plans from the upstream index alone; past the budget it is a CopyError (the upstream
    cannot be imported) naming the manifest, like a copy of it."""
    _, raw = large_index(MAX_WALK_DESCRIPTORS + 1)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    with pytest.raises(CopyError, match=f"{digest}: more than the {MAX_WALK_DESCRIPTORS} descriptors"):
        plan_import(FetchedManifest(raw, OCI_INDEX, digest), exclude=("linux/arm64",))


@pytest.mark.parametrize(
    ("visits", "refused"),
    [
        pytest.param((MAX_WALK_DESCRIPTORS,), False, id="exactly-the-limit"),
        pytest.param((MAX_WALK_DESCRIPTORS + 1,), True, id="one-over-at-once"),
        pytest.param((1000, 1000, 1000, 1000, 96), False, id="spread-to-the-limit"),
        pytest.param((1000, 1000, 1000, 1000, 97), True, id="spread-one-over"),
    ],
)
def test_the_walk_budget_counts_every_descriptor_against_one_limit(visits: tuple[int, ...], refused: bool) -> None:
    budget = WalkBudget("sha256:top")
    try:
        for number, count in enumerate(visits):
            budget.visit(count, "sha256:top" if number == 0 else f"sha256:child-{number}")
    except ManifestError as error:
        assert refused, error
        assert str(error).startswith(f"sha256:top: more than the {MAX_WALK_DESCRIPTORS} descriptors one walk")
        assert len(visits) == 1 or f"(at sha256:child-{len(visits) - 1})" in str(error)
    else:
        assert not refused


@pytest.mark.parametrize(("levels", "refused"), [(MAX_INDEX_DEPTH, False), (MAX_INDEX_DEPTH + 1, True)])
def test_the_walk_budget_bounds_nesting(levels: int, refused: bool) -> None:
    budget = WalkBudget("sha256:top")
    if refused:
        with pytest.raises(ManifestError, match=rf"index nests deeper than {MAX_INDEX_DEPTH} levels \(at sha256:x\)"):
            budget.check_depth(levels, "sha256:x")
    else:
        budget.check_depth(levels, "sha256:x")
