"""The decision as a table: offered platforms + rule → verdict, missing, forbidden, inconsistent (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from importer.core.decide import Facts, Inconsistency, Offer, children_to_verify, decide
from importer.core.platforms import parse
from importer.core.policy import Rule


def offers(*platforms: str) -> tuple[Offer, ...]:
    return tuple(Offer(parse(p), f"sha256:{n:064x}", "application/vnd.oci.image.manifest.v1+json") for n, p in enumerate(platforms))


def rule(require: tuple[str, ...] = ("linux/amd64",), **fields: object) -> Rule:
    return Rule(require=tuple(parse(p) for p in require), **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    id: str
    offered: tuple[str, ...]
    rule: Rule
    verdict: str
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    kind: str = "index"


CASES = [
    Case("single-amd64", ("linux/amd64",), rule(), "compliant", kind="image"),
    Case("single-arm64-on-amd64-policy", ("linux/arm64",), rule(), "violation", missing=("linux/amd64",), kind="image"),
    Case("index-amd64-arm64", ("linux/amd64", "linux/arm64"), rule(("linux/amd64", "linux/arm64")), "compliant"),
    Case("index-missing-arm64", ("linux/amd64",), rule(("linux/amd64", "linux/arm64")), "violation", missing=("linux/arm64",)),
    Case("arm64-v8-satisfies-arm64", ("linux/arm64/v8",), rule(("linux/arm64",)), "compliant"),
    Case("arm64-satisfies-arm64-v8", ("linux/arm64",), rule(("linux/arm64/v8",)), "compliant"),
    Case("arm-v6-on-v7-compatible", ("linux/arm/v6",), rule(("linux/arm/v7",)), "compliant"),
    Case("arm-v6-on-v7-strict", ("linux/arm/v6",), rule(("linux/arm/v7",), match="strict"), "violation", missing=("linux/arm/v7",)),
    Case("arm-v7-on-v6-requirement", ("linux/arm/v7",), rule(("linux/arm/v6",)), "violation", missing=("linux/arm/v6",)),
    Case("386-runs-on-amd64-compatible", ("linux/386",), rule(), "compliant"),
    Case("forbidden-windows", ("linux/amd64", "windows/amd64"), rule(forbid=("windows/*",)), "violation", forbidden=("windows/amd64",)),
    Case("nothing-offered", (), rule(), "violation", missing=("linux/amd64",)),
    Case("alert-only-action", ("linux/arm64",), rule(on_violation="alert"), "violation", missing=("linux/amd64",)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide(case: Case) -> None:
    """The verdict, missing and forbidden platforms follow from what is offered and the rule."""
    facts = Facts("team/app", "sha256:" + "f" * 64, "application/vnd.oci.image.index.v1+json", case.kind, offers(*case.offered))
    verdict = decide(facts, case.rule)
    assert (verdict.verdict, verdict.missing, verdict.forbidden) == (case.verdict, case.missing, case.forbidden)
    assert verdict.action == (case.rule.on_violation if case.verdict == "violation" else "none")
    assert verdict.platforms == tuple(str(parse(p)) for p in case.offered)
    for name in (*case.missing, *case.forbidden):
        assert name in verdict.reason


def test_inconsistent_child_is_a_violation() -> None:
    """An index entry that disagrees with its config is reported and makes the manifest a violation."""
    bad = Inconsistency("sha256:" + "1" * 64, parse("linux/amd64"), parse("linux/arm64"))
    facts = Facts("team/app", "sha256:" + "f" * 64, "x", "index", offers("linux/arm64"), inconsistent=(bad,))
    verdict = decide(facts, rule())
    assert verdict.verdict == "violation"
    assert verdict.inconsistent == (str(bad),)
    assert "index entry says linux/amd64, image config says linux/arm64" in verdict.inconsistent[0]


@pytest.mark.parametrize(
    ("facts_kind", "the_rule", "reason"),
    [("artifact", rule(), "not a runnable image"), ("index", rule(ignore=True), "ignored by the policy")],
    ids=["artifact", "ignored-repository"],
)
def test_ignored(facts_kind: str, the_rule: Rule, reason: str) -> None:
    """Artifacts and ignored repositories are left alone."""
    facts = Facts("team/app", "sha256:" + "f" * 64, "x", facts_kind, artifact_type="application/vnd.cncf.helm.config.v1+json")
    verdict = decide(facts, the_rule)
    assert verdict.verdict == "ignored" and reason in verdict.reason


def test_no_platform_children_are_reported_not_counted() -> None:
    """Children with no platform are listed and named in the reason, never counted as linux/amd64."""
    facts = Facts("team/app", "sha256:" + "f" * 64, "x", "index", (), no_platform=("sha256:" + "2" * 64,))
    verdict = decide(facts, rule())
    assert verdict.verdict == "violation" and verdict.missing == ("linux/amd64",)
    assert verdict.no_platform == facts.no_platform and "with no platform" in verdict.reason


@pytest.mark.parametrize(
    ("offered", "the_rule", "verified"),
    [
        (("linux/amd64", "linux/arm64"), rule(), ("linux/amd64",)),
        (("linux/amd64", "linux/arm64"), rule(("linux/amd64", "linux/arm64")), ("linux/amd64", "linux/arm64")),
        (("linux/amd64", "windows/amd64"), rule(forbid=("windows/*",)), ("linux/amd64", "windows/amd64")),
        (("linux/s390x",), rule(), ()),
    ],
    ids=["only-the-required-one", "both-required", "forbidden-too", "none-deciding"],
)
def test_children_to_verify(offered: tuple[str, ...], the_rule: Rule, verified: tuple[str, ...]) -> None:
    """Only children that can satisfy a requirement or match a forbid pattern are checked against their config."""
    assert tuple(str(o.platform) for o in children_to_verify(offers(*offered), the_rule)) == verified
