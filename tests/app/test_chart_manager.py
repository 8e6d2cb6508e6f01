"""The chart manager: the images a pushed Helm chart references, mapped to guarded repositories, checked, imported.

Pure parts as tables (the inverse of `Rule.upstream_for`, the platforms an image must offer, the chart summary);
then charts built by the tests and pushed to a guarded registry whose notifications reach the local host, with an
upstream registry holding the images. Events that must be repeated are handed to the pipeline directly.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from importer.adapters.registry.oci import OciRegistry
from importer.app.chart_guard import image_event_id, required_platforms, summarize
from importer.app.inspection import inspect_manifest
from importer.app.remediation import quarantine_tag
from importer.core.charts import ChartImage, ChartInfo
from importer.core.decide import decide
from importer.core.events import PushEvent
from importer.core.media_types import OCI_MANIFEST
from importer.core.outcome import Outcome
from importer.core.platforms import parse as parse_platform
from importer.core.policy import Rule, parse_policy
from importer.core.policy.upstream import guarded_repository_for
from importer.core.reference import ReferenceError, parse_reference
from testbed.charts import (
    ChartSpec,
    RawEntry,
    chart_archive,
    chart_config,
    minimal_chart_entries,
    nested_bomb,
    push_chart,
    raw_archive,
)
from testbed.images import ImageBuilder, multi, single
from testbed.push import list_tags, push
from testbed.registry import LocalRegistry
from testbed.stack import GuardedRegistry, is_push_of

# --- guarded_repository_for: the inverse of Rule.upstream_for ---------------------------------------------------

MAPPING_POLICY = parse_policy(
    """
version: 1
defaults:
  upstream: "mirror.example.com:5000/mirror/{repository}"
rules:
  - repositories: ["dockerhub/library/internal/**"]
    ignore: true
  - repositories: ["dockerhub/**"]
    upstream: "docker.io/{path}"
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
  - repositories: ["quay/**"]
    upstream: "quay.io/{path}"
  - repositories: ["hub/*"]
    upstream: "index.docker.io/{path}"
  - repositories: ["dh-*"]
    upstream: "docker.io/library/{path}"
  - repositories: ["ghcr/**"]
    upstream: "ghcr.io/acme/{path}"
  - repositories: ["local/**"]
""",
    source="mapping-policy.yaml",
)
GUARDED_HOST = "guarded.example.com"


@pytest.mark.parametrize(
    ("image", "rule_path", "repository"),
    [
        ("docker.io/library/nginx:1.27", "rules[1]", "dockerhub/library/nginx"),
        ("nginx", "rules[1]", "dockerhub/library/nginx"),
        ("bitnami/redis:7.2@sha256:" + "ab" * 32, "rules[1]", "dockerhub/bitnami/redis"),
        ("registry-1.docker.io/bitnami/redis:7.2", "rules[1]", "dockerhub/bitnami/redis"),
        ("quay.io/prometheus/node-exporter:v1.8.0", "rules[2]", "quay/prometheus/node-exporter"),
        ("QUAY.IO/prometheus/node-exporter", "rules[2]", "quay/prometheus/node-exporter"),
        ("ghcr.io/acme/tools/cli:2", "rules[5]", "ghcr/tools/cli"),
        ("mirror.example.com:5000/mirror/team/app:1.0", "defaults", "team/app"),
        (f"{GUARDED_HOST}/team/app:1.0", "defaults", "team/app"),
        (f"{GUARDED_HOST}/local/app:1.0", "rules[6]", "local/app"),
        (f"{GUARDED_HOST}/dockerhub/library/internal/x:1", "rules[0]", "dockerhub/library/internal/x"),
        ("ghcr.io/other/cli:2", None, None),
        ("gcr.io/distroless/static:nonroot", None, None),
        ("mirror.example.com:5000/elsewhere/app", None, None),
        ("mirror.example.com:5000/mirror/dockerhub/library/nginx", None, None),
        ("docker.io/library/internal/x:1", None, None),
    ],
    ids=[
        "docker-hub-official-image-keeps-library",
        "short-name-normalised-to-docker-hub",
        "docker-hub-user-image-pinned-by-digest",
        "docker-hub-alias-host",
        "quay-path",
        "upper-case-host",
        "template-with-a-fixed-path-prefix",
        "defaults-repository-template",
        "guarded-host-maps-to-itself",
        "guarded-host-under-a-rule-without-upstream",
        "guarded-host-under-an-ignored-rule",
        "host-matches-but-prefix-does-not",
        "no-rule-for-the-host",
        "defaults-template-prefix-does-not-match",
        "round-trip-lands-on-another-rule",
        "candidate-governed-by-an-ignored-rule",
    ],
)
def test_guarded_repository_for_inverts_upstream_for(image: str, rule_path: str | None, repository: str | None) -> None:
    """An upstream image maps to the guarded repository whose rule's upstream names it, and nothing else does."""
    found = guarded_repository_for(MAPPING_POLICY, image, guarded_host=GUARDED_HOST)
    if rule_path is None:
        assert found is None
        return
    assert found is not None
    rule, mapped = found
    assert (rule.key_path, mapped) == (rule_path, repository)
    assert MAPPING_POLICY.rule_for(mapped) == rule
    if not image.lower().startswith(GUARDED_HOST):
        upstream = parse_reference(rule.upstream_for(mapped) or "")
        original = parse_reference(image.lower())
        assert (upstream.registry, upstream.repository) == ("docker.io" if original.registry == "registry-1.docker.io"
                                                            else original.registry, original.repository)


@pytest.mark.parametrize(
    ("globs", "template", "image", "repository"),
    [
        ('["dockerhub/*"]', "docker.io/{path}", "nginx", "dockerhub/nginx"),
        ('["dockerhub/*"]', "docker.io/{path}", "docker.io/bitnami/redis", None),
        ('["dh-*"]', "docker.io/library/{path}", "nginx:1.27", "dh-nginx"),
        ('["one/fixed"]', "docker.io/{path}", "docker.io/one/fixed", "one/fixed"),
        ('["a/**", "b/**"]', "quay.io/{path}", "quay.io/x/y", "a/x/y"),
        ('["team/**"]', "up.example.com/{repository}/mirror", "up.example.com/team/app/mirror", "team/app"),
        ('["team/**"]', "up.example.com/{path}/and/{path}", "up.example.com/x/and/x", "team/x"),
        ('["team/**"]', "up.example.com/{path}/and/{path}", "up.example.com/x/and/y", None),
    ],
    ids=[
        "single-segment-glob-takes-the-name-without-library",
        "single-segment-glob-cannot-hold-two-segments",
        "prefix-glob-within-a-segment",
        "literal-glob-path-is-the-whole-name",
        "first-glob-of-the-rule-wins",
        "repository-placeholder-in-the-middle",
        "repeated-placeholder-must-agree",
        "repeated-placeholder-that-disagrees",
    ],
)
def test_guarded_repository_for_handles_globs_and_templates(
    globs: str, template: str, image: str, repository: str | None
) -> None:
    """Glob prefixes, literal globs and placeholders anywhere in the template invert exactly."""
    policy = parse_policy(
        f"version: 1\nrules:\n  - repositories: {globs}\n    upstream: \"{template}\"\n", source="one-rule.yaml"
    )
    found = guarded_repository_for(policy, image)
    assert (found[1] if found else None) == repository


def test_guarded_repository_for_refuses_what_is_not_an_image_reference() -> None:
    """A value that is not an image reference is a ReferenceError naming it."""
    with pytest.raises(ReferenceError, match="Not/An Image"):
        guarded_repository_for(MAPPING_POLICY, "Not/An Image")


# --- required platforms and the summary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("require", "chart", "image", "expected"),
    [
        (("linux/amd64",), (), (), ("linux/amd64",)),
        (("linux/amd64",), ("linux/arm64",), (), ("linux/amd64", "linux/arm64")),
        (("linux/amd64",), ("linux/amd64", "linux/arm64/v8"), ("linux/arm64",), ("linux/amd64", "linux/arm64")),
        (("linux/amd64",), (), ("linux/arm/v7", "linux/s390x"), ("linux/amd64", "linux/arm/v7", "linux/s390x")),
        ((), ("linux/arm64",), ("linux/amd64",), ("linux/arm64", "linux/amd64")),
    ],
    ids=["rule-only", "chart-adds", "duplicates-and-aliases-once", "image-annotation-adds", "no-rule-requirement"],
)
def test_required_platforms_extend_the_rule(
    require: tuple[str, ...], chart: tuple[str, ...], image: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    """An image must offer the rule's platforms, then the chart's, then its own annotation's, each once."""
    rule = Rule(require=tuple(parse_platform(p) for p in require))
    assert tuple(map(str, required_platforms(rule, chart, image))) == expected


def _image(reference: str, *, heuristic: bool = False) -> ChartImage:
    parsed = parse_reference(reference)
    return ChartImage(reference=str(parsed), registry=parsed.registry, repository=parsed.repository, tag=parsed.tag,
                      digest=parsed.digest, platforms=(), sources=("values.yaml:image",), heuristic=heuristic)


def _result(result: str) -> Outcome:
    return Outcome(event_id="e/image/1", received_at="t", result=result)


@pytest.mark.parametrize(
    ("results", "heuristic", "unresolved", "chart_platforms", "expected_result", "expected_reason"),
    [
        (["compliant", "compliant", "reimported"], False, 0, (), "reimported",
         "chart shop 1.0.0: 3 images: 2 compliant, 1 imported; 0 failed"),
        (["compliant"], False, 0, (), "compliant", "chart shop 1.0.0: 1 image: 1 compliant, 0 imported; 0 failed"),
        ([], False, 0, (), "compliant", "chart shop 1.0.0: 0 images: 0 compliant, 0 imported; 0 failed"),
        (["compliant", "failed"], False, 0, (), "failed",
         "chart shop 1.0.0: 2 images: 1 compliant, 0 imported; 1 failed; not made compliant: docker.io/library/img1:1 "
         "(failed)"),
        (["reimported", "alerted", "ignored"], False, 0, (), "alerted",
         "chart shop 1.0.0: 3 images: 0 compliant, 1 imported; 0 failed, 1 alerted, 1 ignored; not made compliant: "
         "docker.io/library/img1:1 (alerted)"),
        (["compliant"], True, 2, ("linux/arm64",), "compliant",
         "chart shop 1.0.0: 1 image: 1 compliant, 0 imported; 0 failed; the chart requires linux/arm64; 1 found only "
         "by heuristics in values; 2 image-like values not resolved (templates are not rendered)"),
    ],
    ids=["imported", "all-compliant", "no-images", "one-failed", "alerted-and-ignored", "heuristics-and-templates"],
)
def test_summary_counts_what_was_done_per_image(
    results: list[str], heuristic: bool, unresolved: int, chart_platforms: tuple[str, ...], expected_result: str,
    expected_reason: str,
) -> None:
    """The chart's outcome says how many images were compliant, imported and failed; any failure makes it fail."""
    images = [(_image(f"img{number}:1", heuristic=heuristic), _result(result)) for number, result in enumerate(results)]
    info = ChartInfo(name="shop", version="1.0.0", app_version=None, platforms=chart_platforms,
                     images=tuple(image for image, _ in images), subcharts=(),
                     unresolved=tuple(f"values.yaml:x{n}: '{{{{ .Values.x }}}}'" for n in range(unresolved)))
    summary = summarize(info, images)
    assert (summary.result, summary.reason) == (expected_result, expected_reason)
    assert (summary.error is not None) == (expected_result == "failed")
    assert (summary.alert == "chart") == (expected_result == "alerted")


# --- end to end: charts pushed to a guarded registry -------------------------------------------------------


def chart_policy(upstream_host: str, *, on_violation: str = "reimport") -> str:
    """`mirror/**` mirrors the upstream registry (`<upstream>/library/app` lives at `mirror/library/app`)."""
    return (
        "version: 1\n"
        "defaults:\n"
        "  require: [linux/amd64]\n"
        "rules:\n"
        '  - repositories: ["mirror/**"]\n'
        f'    upstream: "{upstream_host}/{{path}}"\n'
        f"    on_violation: {on_violation}\n"
    )


def images_annotation(*references: str) -> str:
    return yaml.safe_dump([{"name": f"image{n}", "image": reference} for n, reference in enumerate(references)])


@dataclass(frozen=True, slots=True)
class ChartRun:
    """The outcomes of one chart push: the summary and the per-image outcomes, in image order."""

    summary: Outcome
    images: list[Outcome]


def per_image(outcomes: list[Outcome], chart_event_id: str) -> list[Outcome]:
    prefix = image_event_id(chart_event_id, 0)[:-1]
    return sorted((o for o in outcomes if o.event_id.startswith(prefix)), key=lambda o: int(o.event_id[len(prefix):]))


def push_and_wait(stack: GuardedRegistry, builder: ImageBuilder, spec: ChartSpec,
                  repository: str = "charts/shop") -> ChartRun:
    """Push `spec` as an OCI chart to the guarded registry and wait for the chart's outcome."""
    push_chart(builder, chart_archive(spec), chart_config(spec), stack.registry.host, repository, spec.version)
    summary = stack.wait_for(repository, tag=spec.version)
    return ChartRun(summary, per_image(stack.outcomes(), summary.event_id))


def settled(stack: GuardedRegistry, repository: str, tag: str, digest: str) -> Outcome:
    """Wait for the outcome of our own write of repository:tag@digest (the push event the import caused)."""
    outcomes = stack.wait_until(lambda found: any(is_push_of(o, repository, tag) and o.digest == digest
                                                  and "/image/" not in o.event_id for o in found))
    return next(o for o in outcomes if is_push_of(o, repository, tag) and o.digest == digest
                and "/image/" not in o.event_id)


def push_app(builder: ImageBuilder, host: str, repository: str = "library/app", tag: str = "1.0", *,
             seed: str = "") -> str:
    """Push an amd64 + arm64 index to host/repository:tag; returns its digest."""
    return push(builder, multi(builder, ["linux/amd64", "linux/arm64"], seed=seed), host, repository, tag, via="raw")


def head_digest(host: str, repository: str, reference: str) -> str | None:
    head = OciRegistry(host).head_manifest(repository, reference)
    return head.digest if head is not None else None


def offers(host: str, repository: str, reference: str, *platforms: str) -> bool:
    """Whether repository@reference on `host` offers every one of `platforms`, checked like the pipeline does."""
    rule = Rule(require=tuple(parse_platform(p) for p in platforms))
    return decide(inspect_manifest(OciRegistry(host), repository, reference, rule), rule).verdict == "compliant"


ChartFactory = Callable[[str, str], ChartSpec]  # (upstream host, digest of library/app:1.0 there) → chart


def _app_map(upstream: str, **fields: str) -> dict[str, str]:
    return {"registry": upstream, "repository": "library/app", **fields}


DISCOVERY_CASES: list[tuple[str, ChartFactory, str | None, bool, bool, str]] = [
    ("annotation-only",
     lambda up, _: ChartSpec("shop", "1.0.0",
                             annotations={"artifacthub.io/images": images_annotation(f"{up}/library/app:1.0")}),
     "1.0", False, False, "declared at Chart.yaml:artifacthub.io/images[0]"),
    ("values-flat-string",
     lambda up, _: ChartSpec("shop", "1.0.0", values={"image": f"{up}/library/app:1.0"}),
     "1.0", False, True, "values.yaml:image"),
    ("values-nested-map",
     lambda up, _: ChartSpec("shop", "1.0.0", values={"frontend": {"image": _app_map(up, tag="1.0")}}),
     "1.0", False, True, "values.yaml:frontend.image"),
    ("values-tag-from-app-version",
     lambda up, _: ChartSpec("shop", "1.0.0", app_version="1.0", values={"image": _app_map(up)}),
     "1.0", False, True, "values.yaml:image"),
    ("values-global-registry",
     lambda up, _: ChartSpec("shop", "1.0.0", values={"global": {"imageRegistry": up},
                                                       "image": {"repository": "library/app", "tag": "1.0"}}),
     "1.0", False, True, "values.yaml:image"),
    ("values-digest-only",
     lambda up, digest: ChartSpec("shop", "1.0.0", values={"image": _app_map(up, digest=digest)}),
     None, True, True, "values.yaml:image"),
    ("values-tag-and-digest",
     lambda up, digest: ChartSpec("shop", "1.0.0", values={"image": _app_map(up, tag="1.0", digest=digest)}),
     "1.0", True, True, "values.yaml:image"),
    ("sub-chart-directory",
     lambda up, _: ChartSpec("shop", "1.0.0",
                             subcharts=(ChartSpec("cache", values={"image": _app_map(up, tag="1.0")}),)),
     "1.0", False, True, "charts/cache/values.yaml:image"),
    ("sub-chart-image-set-by-the-parent",
     lambda up, _: ChartSpec("shop", "1.0.0", values={"cache": {"image": _app_map(up, tag="1.0")}},
                             subcharts=(ChartSpec("cache", values={"replicaCount": 1}),)),
     "1.0", False, True, "found only by heuristics in values at values.yaml:cache.image"),
    ("packaged-sub-chart-annotation",
     lambda up, _: ChartSpec("shop", "1.0.0", packaged=(ChartSpec("cache", annotations={
         "artifacthub.io/images": images_annotation(f"{up}/library/app:1.0")}),)),
     "1.0", False, False, "artifacthub.io/images[0]"),
]


@pytest.mark.parametrize(
    ("make_chart", "tag", "pinned", "heuristic", "found_at"),
    [case[1:] for case in DISCOVERY_CASES],
    ids=[case[0] for case in DISCOVERY_CASES],
)
def test_each_way_a_chart_names_an_image_gets_it_imported(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder,
    make_chart: ChartFactory, tag: str | None, pinned: bool, heuristic: bool, found_at: str,
) -> None:
    """However the chart names a missing image, it is imported from its upstream into the mapped repository."""
    wanted = push_app(builder, upstream.host)
    stack = guarded(chart_policy(upstream.host))
    run = push_and_wait(stack, builder, make_chart(upstream.host, wanted))

    assert [o.result for o in run.images] == ["reimported"], [o.reason for o in run.images]
    image = run.images[0]
    assert (image.repository, image.tag, image.new_digest) == ("mirror/library/app", tag, wanted)
    assert image.digest == wanted
    assert image.source is not None and image.source.startswith(f"{upstream.host}/library/app")
    assert found_at in (image.reason or "")
    assert ("found only by heuristics" in (image.reason or "")) == heuristic
    assert f"chart {stack.registry.host}/charts/shop:1.0.0@{run.summary.digest}" in (image.reason or "")
    assert head_digest(stack.registry.host, "mirror/library/app", wanted) == wanted
    if tag is not None:
        assert head_digest(stack.registry.host, "mirror/library/app", tag) == wanted
    if pinned and tag is None:
        assert list_tags(stack.registry.host, "mirror/library/app") == []
    assert run.summary.result == "reimported", run.summary.reason
    assert run.summary.reason is not None and "1 image: 0 compliant, 1 imported; 0 failed" in run.summary.reason
    assert run.summary.media_type == OCI_MANIFEST and run.summary.kind == "artifact"


def test_an_image_already_compliant_is_left_alone(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """An image the guarded registry already has with every required platform is reported compliant, nothing written."""
    stack = guarded(chart_policy(upstream.host))
    present = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), stack.registry.host,
                   "mirror/library/app", "1.0", via="raw")
    spec = ChartSpec("shop", "1.0.0", annotations={"platform-guard.io/platforms": "linux/arm64"},
                     values={"image": f"{upstream.host}/library/app:1.0"})
    run = push_and_wait(stack, builder, spec)

    assert [o.result for o in run.images] == ["compliant"]
    image = run.images[0]
    assert (image.digest, image.new_digest, image.preserved_as) == (present, None, None)
    assert image.required == ("linux/amd64", "linux/arm64") and image.platforms == ("linux/amd64", "linux/arm64")
    assert head_digest(stack.registry.host, "mirror/library/app", "1.0") == present
    assert list(OciRegistry(upstream.host).catalog()) == []  # nothing was there to import, and nothing was needed
    assert (run.summary.result, run.summary.required) == ("compliant", ("linux/arm64",))
    assert "1 image: 1 compliant, 0 imported; 0 failed" in (run.summary.reason or "")


def test_an_image_missing_arm64_is_reimported_when_the_chart_declares_arm64(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """An amd64-only image (compliant for its own rule) is replaced by the upstream index when the chart wants arm64."""
    good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"], attestations=True), upstream.host,
                "library/app", "1.0", via="raw")
    stack = guarded(chart_policy(upstream.host))
    old = push(builder, single(builder, "linux/amd64", seed="old"), stack.registry.host, "mirror/library/app", "1.0",
               via="raw")
    assert stack.wait_for("mirror/library/app", tag="1.0").result == "compliant"
    spec = ChartSpec("shop", "1.0.0", annotations={"platform-guard.io/platforms": "linux/amd64, linux/arm64"},
                     values={"image": f"{upstream.host}/library/app:1.0"})
    run = push_and_wait(stack, builder, spec)

    assert [o.result for o in run.images] == ["reimported"], [o.reason for o in run.images]
    image = run.images[0]
    assert (image.digest, image.new_digest) == (old, good)
    assert image.source == f"{upstream.host}/library/app:1.0@{good}"
    assert image.preserved_as == f"{stack.registry.host}/quarantine/mirror/library/app:{quarantine_tag('1.0', old)}"
    assert image.verdict == "compliant" and "linux/arm64" in image.platforms
    assert head_digest(stack.registry.host, "mirror/library/app", "1.0") == good
    assert offers(stack.registry.host, "mirror/library/app", "1.0", "linux/amd64", "linux/arm64")
    assert head_digest(stack.registry.host, "quarantine/mirror/library/app", quarantine_tag("1.0", old)) == old
    assert settled(stack, "mirror/library/app", "1.0", good).result == "compliant"  # our own write settles
    assert run.summary.result == "reimported"
    assert "1 image: 0 compliant, 1 imported; 0 failed; the chart requires linux/amd64, linux/arm64" in (
        run.summary.reason or "")


FAILURE_CASES: list[tuple[str, str, str]] = [
    ("exists-nowhere", "ghost", "cannot be read"),
    ("upstream-lacks-arm64", "amd64-upstream", "has no compliant variant"),
    ("pinned-digest-lacks-arm64", "pinned", "pinned by digest"),
    ("guarded-image-without-upstream", "own-host", "has no upstream to import it from"),
    ("required-platform-forbidden", "forbidden", "forbidden by 'linux/arm64'"),
]


@pytest.mark.parametrize(
    ("setup", "why"), [case[1:] for case in FAILURE_CASES], ids=[case[0] for case in FAILURE_CASES]
)
def test_an_image_that_cannot_be_made_compliant_fails_and_the_chart_says_so(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder, setup: str, why: str
) -> None:
    """An image that exists nowhere, or nowhere with the platforms needed, ends `failed`; so does the chart push."""
    policy = chart_policy(upstream.host)
    if setup == "forbidden":
        policy += '    forbid: ["linux/arm64"]\n'
    stack = guarded(policy)
    reference = f"{upstream.host}/library/app:1.0"
    if setup == "ghost":
        reference = f"{upstream.host}/library/ghost:1"
    elif setup == "amd64-upstream":
        push(builder, single(builder, "linux/amd64"), upstream.host, "library/app", "1.0", via="raw")
    elif setup == "pinned":
        pinned = push(builder, single(builder, "linux/amd64"), stack.registry.host, "mirror/library/app", None,
                      via="raw")
        reference = f"{upstream.host}/library/app@{pinned}"
    elif setup == "own-host":
        reference = f"{stack.registry.host}/team/app:1"
    spec = ChartSpec("shop", "1.0.0", annotations={"platform-guard.io/platforms": "linux/arm64",
                                                   "artifacthub.io/images": images_annotation(reference)})
    run = push_and_wait(stack, builder, spec)

    assert [o.result for o in run.images] == ["failed"], [o.reason for o in run.images]
    assert why in (run.images[0].reason or ""), run.images[0].reason
    assert run.images[0].error and run.images[0].alerts
    assert (run.summary.result, run.summary.error) == ("failed", "1 of 1 images could not be made compliant")
    assert f"not made compliant: {parse_reference(reference)} (failed)" in (run.summary.reason or "")
    registry = OciRegistry(stack.registry.host)
    if setup == "pinned":  # the pinned image stays as it was: by digest, untagged
        assert sorted(registry.catalog()) == ["charts/shop", "mirror/library/app"]
        assert list_tags(stack.registry.host, "mirror/library/app") == []
    else:
        assert list(registry.catalog()) == ["charts/shop"]


ALERT_CASES: list[tuple[str, str, str]] = [
    ("registry-no-rule-maps", "unguarded", "no policy rule's upstream maps it"),
    ("rule-says-alert-only", "alert-only", "says on_violation: alert"),
    ("repository-paused", "paused", "remediation is paused for mirror/library/app"),
]


@pytest.mark.parametrize(("setup", "why"), [case[1:] for case in ALERT_CASES], ids=[case[0] for case in ALERT_CASES])
def test_an_image_the_policy_says_not_to_import_is_alerted_and_nothing_is_written(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder, setup: str, why: str
) -> None:
    """Images outside every rule, under `on_violation: alert` or in a paused repository are alerted, not imported."""
    push_app(builder, upstream.host)
    options: dict[str, Any] = {"paused_repositories": ("mirror/**",)} if setup == "paused" else {}
    stack = guarded(chart_policy(upstream.host, on_violation="alert" if setup == "alert-only" else "reimport"),
                    **options)
    # Nothing listens on port 9 of this machine: were it contacted, the image would fail instead of being alerted.
    reference = "127.0.0.1:9/team/tool:1" if setup == "unguarded" else f"{upstream.host}/library/app:1.0"
    run = push_and_wait(stack, builder, ChartSpec("shop", "1.0.0", values={"image": reference}))

    assert [(o.result, o.alert) for o in run.images] == [
        ("alerted", "unguarded" if setup == "unguarded" else "violation")], [o.reason for o in run.images]
    assert why in (run.images[0].reason or "")
    assert (run.summary.result, run.summary.alert) == ("alerted", "chart")
    assert list(OciRegistry(stack.registry.host).catalog()) == ["charts/shop"]


HOSTILE_CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("path-traversal", lambda: raw_archive([*minimal_chart_entries("bad"), RawEntry("bad/../../evil", b"x")]),
     "'..' in the path"),
    ("symbolic-link", lambda: raw_archive([*minimal_chart_entries("bad"), RawEntry(
        "bad/charts/link", type=tarfile.SYMTYPE, linkname="/etc/passwd")]), "symbolic link"),
    ("archive-bomb-of-sub-charts", lambda: nested_bomb(2, 8, 1024 * 1024), "unpacks to more than"),
]


@pytest.mark.parametrize(
    ("archive", "why"), [case[1:] for case in HOSTILE_CASES], ids=[case[0] for case in HOSTILE_CASES]
)
def test_a_hostile_chart_archive_fails_the_push_and_writes_nothing(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder,
    archive: Callable[[], bytes], why: str,
) -> None:
    """A refused chart archive ends the chart push `failed` with the reason; no image is looked at or written."""
    push_app(builder, upstream.host)
    stack = guarded(chart_policy(upstream.host))
    config = {"apiVersion": "v2", "name": "bad", "version": "1.0.0"}
    push_chart(builder, archive(), config, stack.registry.host, "charts/bad", "1.0.0")
    summary = stack.wait_for("charts/bad", tag="1.0.0")

    assert summary.result == "failed" and why in (summary.error or ""), summary.error
    assert "the chart cannot be read" in (summary.reason or "")
    assert per_image(stack.outcomes(), summary.event_id) == []
    assert list(OciRegistry(stack.registry.host).catalog()) == ["charts/bad"]


def chart_event(host: str, repository: str, tag: str, digest: str, event_id: str, *, artifact: str,
                schema: str = "distribution") -> PushEvent:
    """A chart push event as the parsers build it (ACR `ChartPushed` has artifact "chart")."""
    return PushEvent(event_id=event_id, schema=schema, action="push", origin=host, repository=repository, tag=tag,
                     digest=digest, media_type=OCI_MANIFEST, size=1, artifact=artifact, actor="ci",
                     user_agent="Helm/3.15", occurred_at=None)


def test_redelivery_of_a_chart_event_is_a_duplicate_and_imports_nothing_again(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """The same chart event again is a duplicate with no per-image work; another event for it finds it compliant."""
    wanted = push_app(builder, upstream.host)
    stack = guarded(chart_policy(upstream.host))
    spec = ChartSpec("shop", "1.0.0", values={"image": f"{upstream.host}/library/app:1.0"})
    run = push_and_wait(stack, builder, spec)
    assert [o.result for o in run.images] == ["reimported"]
    settled(stack, "mirror/library/app", "1.0", wanted)
    before = stack.outcomes()

    again = stack.pipeline.handle(chart_event(stack.registry.host, "charts/shop", "1.0.0", run.summary.digest or "",
                                              run.summary.event_id, artifact="chart"))
    assert again is not None and (again.result, again.reason) == ("duplicate", "event already handled")
    assert per_image(stack.outcomes(), run.summary.event_id) == run.images

    other = stack.pipeline.handle(chart_event(stack.registry.host, "charts/shop", "1.0.0", run.summary.digest or "",
                                              "another-delivery", artifact="chart"))
    assert other is not None and other.result == "compliant", other.reason
    assert [o.result for o in per_image(stack.outcomes(), "another-delivery")] == ["compliant"]
    assert head_digest(stack.registry.host, "mirror/library/app", "1.0") == wanted
    new_pushes = [o for o in stack.outcomes()[len(before):] if o.repository == "mirror/library/app"
                  and not o.event_id.startswith("another-delivery/")]
    assert new_pushes == []  # no second import: no push event for the image at all


@pytest.mark.parametrize(
    ("artifact", "schema"),
    [("chart", "eventgrid"), ("image", "distribution")],
    ids=["acr-chart-pushed-event", "oci-push-found-to-be-a-chart-by-inspection"],
)
def test_a_chart_push_goes_to_the_chart_manager_whatever_the_event_says(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder, tmp_path: Path,
    artifact: str, schema: str,
) -> None:
    """An ACR `ChartPushed` event, and an image push event whose manifest has the Helm config, both check the chart."""
    wanted = push_app(builder, upstream.host)
    with LocalRegistry(tmp_path / "quiet") as quiet:  # no notifications: the test delivers the event itself
        stack = guarded(chart_policy(upstream.host), extra_registries=(quiet.host,))
        spec = ChartSpec("shop", "2.0.0+build.1", values={"image": f"{upstream.host}/library/app:1.0"})
        digest = push_chart(builder, chart_archive(spec), chart_config(spec), quiet.host, "charts/shop", spec.version)
        summary = stack.pipeline.handle(chart_event(quiet.host, "charts/shop", "2.0.0_build.1", digest, "chart-1",
                                                    artifact=artifact, schema=schema))
        assert summary is not None and summary.result == "reimported", summary.reason or summary.error
        assert (summary.repository, summary.digest, summary.schema) == ("charts/shop", digest, schema)
        images = per_image(stack.outcomes(), "chart-1")
        assert [(o.event_id, o.result, o.actor) for o in images] == [("chart-1/image/1", "reimported", "ci")]
        assert head_digest(quiet.host, "mirror/library/app", "1.0") == wanted


def test_a_retried_delivery_reuses_what_an_earlier_attempt_recorded_for_an_image(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder, tmp_path: Path
) -> None:
    """An image whose claimed event id already has an outcome (an attempt that failed later) is not handled again."""
    push_app(builder, upstream.host)
    push_app(builder, upstream.host, "library/base", "1", seed="b")
    with LocalRegistry(tmp_path / "quiet") as quiet:
        stack = guarded(chart_policy(upstream.host), extra_registries=(quiet.host,))
        spec = ChartSpec("shop", "1.0.0", values={"image": f"{upstream.host}/library/app:1.0",
                                                  "initImage": f"{upstream.host}/library/base:1"})
        digest = push_chart(builder, chart_archive(spec), chart_config(spec), quiet.host, "charts/shop", spec.version)
        first = image_event_id("retried", 1)  # images are numbered in reference order: library/app first
        assert stack.ledger.claim(first)
        stack.ledger.record(Outcome(event_id=first, received_at="earlier", result="compliant",
                                    repository="mirror/library/app", reason="recorded by the earlier attempt"))
        summary = stack.pipeline.handle(chart_event(quiet.host, "charts/shop", "1.0.0", digest, "retried",
                                                    artifact="chart"))
        assert summary is not None
        assert "2 images: 1 compliant, 1 imported; 0 failed" in (summary.reason or ""), summary.reason
        assert [o.reason for o in per_image(stack.outcomes(), "retried")][0] == "recorded by the earlier attempt"
        assert head_digest(quiet.host, "mirror/library/app", "1.0") is None  # not handled a second time
        assert head_digest(quiet.host, "mirror/library/base", "1") is not None
