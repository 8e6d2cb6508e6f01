"""Sweep (importer/app/sweep): a whole registry judged and reconciled against the policy, on real registries.

A distribution registry seeded with 200 tags across 20 repositories: compliant indexes and images, violations to
quarantine, violations to re-import from an upstream registry (and one the upstream lacks), alert-only violations,
an ignored sandbox, OCI artifacts and Helm charts, plus a quarantine repository that must be skipped. Each distinct
image is pushed once per repository (raw pushes, no skopeo: milliseconds each) and the other tags are raw manifest
PUTs of the same bytes. The test keeps its own table of what every tag is, and compares reports with it.

Pagination: the real registry paginates `/v2/_catalog` by `n`; distribution 2.8 ignores `n` on tags/list, so tag
pagination (and ACR's `/acr/v1` listings, a contract test) go through PagingProxy, a small loopback proxy below
that pages those listings with `Link` headers and forwards every other GET/HEAD to the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import importer.entry.runtime
from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.acr import AcrRegistry
from importer.app.pipeline import Pipeline
from importer.app.registries import RegistryDirectory
from importer.app.settings import KNOWN_SETTINGS, Settings, SettingsError, load_settings, sweep_timer_configured
from importer.app.sweep import (
    DRY_RUN,
    REMEDIATE,
    Sweep,
    SweepOptions,
    SweepReport,
    parse_scope,
    sweep_event_id,
)
from importer.core.events import PushEvent
from importer.core.outcome import Outcome
from importer.core.policy import Policy, parse_policy
from importer.entry.audit_report import render_html, render_markdown
from importer.entry.composition import registry_directory_for
from importer.entry.runtime import Runtime
from importer.entry.sweep_timer import record_only
from testbed.faults import FaultProxy
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import Descriptor, ImageBuilder, multi, single
from testbed.push import fetch_manifest, list_tags, push, push_raw_manifest
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
TAGS = [f"t{number:02d}" for number in range(10)]
POLICY_TEMPLATE = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["mirror/**"]
    upstream: "{upstream}/library/{{path}}"
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
  - repositories: ["alerts/**"]
    on_violation: alert
  - repositories: ["sandbox/**"]
    ignore: true
quarantine:
  mode: move
  repository: "quarantine/{{repository}}"
"""


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the test pushed to one tag, and what the sweep must say about it."""

    status: str  # compliant | violation | ignored
    action: str  # none | quarantine | reimport | alert
    digest: str
    upstream_digest: str | None = None  # for re-importable violations: what the tag must point at afterwards


@dataclass(frozen=True, slots=True)
class Seed:
    """A seeded guarded registry, its upstream, the policy and the test's own table of every tag."""

    host: str
    upstream: str
    policy_text: str
    expected: dict[tuple[str, str], Seeded]

    @property
    def policy(self) -> Policy:
        return parse_policy(self.policy_text)

    def count(self) -> dict[str, int]:
        counted = Counter(seeded.status for seeded in self.expected.values())
        return {status: counted.get(status, 0) for status in ("compliant", "violation", "ignored", "failed", "gone")}


def _tag_all(builder: ImageBuilder, image: Descriptor, host: str, repository: str, tags: list[str]) -> None:
    """Push `image` once under the first tag, then PUT the same manifest bytes under the others."""
    push(builder, image, host, repository, tags[0], via="raw")
    for tag in tags[1:]:
        push_raw_manifest(host, repository, tag, builder.blob(image.digest), image.media_type)


def seed_registry(builder: ImageBuilder, host: str, upstream: str, *, small: bool = False) -> Seed:
    """200 tags in 20 repositories (see the module docstring), and a quarantine repository to skip; `small`: only
    the 10 tags of team/app-03, for tests about one repository."""
    expected: dict[tuple[str, str], Seeded] = {}

    def note(repository: str, tags: list[str], image: Descriptor, status: str, action: str,
             upstream_digest: str | None = None) -> None:
        _tag_all(builder, image, host, repository, tags)
        for tag in tags:
            expected[(repository, tag)] = Seeded(status, action, image.digest, upstream_digest)

    both = multi(builder, ["linux/amd64", "linux/arm64"], attestations=True)
    amd64 = single(builder, "linux/amd64", seed="plain")
    for number in (3,) if small else range(8):  # quarantine rule (defaults)
        repository = f"team/app-{number:02d}"
        note(repository, TAGS[0:4], both, "compliant", "none")
        note(repository, TAGS[4:6], amd64, "compliant", "none")
        for tag in TAGS[6:8]:  # each its own wrong-arch image
            wrong = single(builder, "linux/arm64", seed=f"{repository}:{tag}")
            note(repository, [tag], wrong, "violation", "quarantine")
        note(repository, TAGS[8:10], single(builder, "linux/arm64", seed=f"{repository}:shared"), "violation",
             "quarantine")  # two tags on one digest: a quarantine on distribution removes both
    if small:
        return Seed(host, upstream, POLICY_TEMPLATE.format(upstream=upstream), expected)
    for number in range(4):  # re-import rule: amd64 + arm64 from the upstream
        repository, path = f"mirror/lib-{number:02d}", f"library/lib-{number:02d}"
        note(repository, TAGS[0:5], both, "compliant", "none")
        right = multi(builder, ["linux/amd64", "linux/arm64"], seed=f"upstream {path}")
        _tag_all(builder, right, upstream, path, TAGS[5:9])
        for tag in TAGS[5:9]:
            note(repository, [tag], single(builder, "linux/amd64", seed=f"{repository}:{tag}"), "violation", "reimport",
                 upstream_digest=right.digest)
        note(repository, [TAGS[9]], single(builder, "linux/amd64", seed=f"{repository}:nowhere"), "violation",
             "reimport")  # the upstream has no such tag: quarantined instead
    for number in range(2):  # alert only
        repository = f"alerts/svc-{number:02d}"
        note(repository, TAGS[0:5], amd64, "compliant", "none")
        note(repository, TAGS[5:10], single(builder, "linux/arm64", seed=repository), "violation", "alert")
    for number in range(2):
        note(f"sandbox/x-{number:02d}", TAGS, single(builder, "linux/arm64", seed="sandbox"), "ignored", "none")
        note(f"artifacts/sbom-{number:02d}", TAGS, builder.artifact(seed=f"sbom {number}"), "ignored", "none")
        note(f"charts/c-{number:02d}", TAGS, builder.helm_chart(f"c-{number:02d}", "1.0.0"), "ignored", "none")
    kept = single(builder, "linux/arm64", seed="kept")
    push(builder, kept, host, "quarantine/team/app-00", f"old.sha256-{kept.hex[:12]}", via="raw")
    assert len(expected) == 200 and len({repository for repository, _ in expected}) == 20
    return Seed(host, upstream, POLICY_TEMPLATE.format(upstream=upstream), expected)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    """A seeded registry and its upstream, shared by the tests that only read (dry runs)."""
    root = tmp_path_factory.mktemp("sweep-read-only")
    with LocalRegistry(root / "guarded") as guarded, LocalRegistry(root / "upstream") as upstream:
        yield seed_registry(ImageBuilder(root / "layout"), guarded.host, upstream.host)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Seed]:
    """A seeded registry of its own, for a test that changes it."""
    with LocalRegistry(tmp_path / "guarded") as guarded, LocalRegistry(tmp_path / "upstream") as upstream:
        yield seed_registry(ImageBuilder(tmp_path / "layout"), guarded.host, upstream.host)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Seed]:
    """A registry of its own holding only team/app-03 (6 compliant tags, 4 to quarantine, two of them on one digest)."""
    with LocalRegistry(tmp_path / "guarded") as guarded:
        yield seed_registry(ImageBuilder(tmp_path / "layout"), guarded.host, "127.0.0.1:9", small=True)


def directory_for(seed: Seed, *, factory: Callable[[str], Any] | None = None) -> RegistryDirectory:
    settings = Settings(registries=(seed.host,), policy=seed.policy)
    return registry_directory_for(settings) if factory is None else RegistryDirectory(settings, factory=factory)


def pipeline_for(seed: Seed, ledger: SqliteLedger, **options: Any) -> Pipeline:
    return Pipeline(policy=seed.policy, ledger=ledger, registries=directory_for(seed), **options)


def statuses(report: SweepReport) -> dict[tuple[str, str], str]:
    return {(item.repository, item.tag): item.status for item in report.items}


# -- dry run -----------------------------------------------------------------------------------------------


def test_dry_run_totals_match_the_count_the_test_made(seeded: Seed) -> None:
    """A dry run judges all 200 tags as the seed says, skips the quarantine repository, and changes nothing."""
    before = {repository: sorted(list_tags(seeded.host, repository)) for repository, _ in seeded.expected}
    report = Sweep(seeded.host, policy=seeded.policy, registries=directory_for(seeded)).run()
    assert report.totals() == seeded.count() == {"compliant": 78, "violation": 62, "ignored": 60, "failed": 0,
                                                 "gone": 0}
    assert statuses(report) == {key: seeded.status for key, seeded in seeded.expected.items()}
    assert {(item.repository, item.tag): item.action for item in report.violations} == {
        key: seeded.action for key, seeded in seeded.expected.items() if seeded.status == "violation"
    }
    assert report.skipped_repositories == ("quarantine/team/app-00",)
    assert report.results() == {} and report.complete and report.mode == DRY_RUN
    assert report.by_repository()["team/app-03"] == {"tags": 10, "compliant": 6, "violation": 4, "ignored": 0,
                                                     "failed": 0, "gone": 0}
    assert {repository: sorted(list_tags(seeded.host, repository)) for repository, _ in seeded.expected} == before


def test_each_tag_is_read_once_and_each_distinct_child_and_config_once_per_repository(seeded: Seed) -> None:
    """One manifest GET per tag read; index children and configs come from the client's digest cache after their
    first read in a repository, even with 8 workers (tags on one digest wait for the first instead of racing it)."""
    report = Sweep(seeded.host, policy=seeded.policy, registries=directory_for(seeded),
                   options=SweepOptions(parallel=8)).run()
    listings = 1 + 20  # one catalog page (21 names), the tags of every repository but the quarantine one
    tags_read = 200 - 20  # the sandbox is ignored by the policy: listed, never read
    # First reads of what the tags point at, per repository. team: the index's amd64 child and its config (the only
    # deciding child when linux/amd64 alone is required), the amd64 image's config, 3 wrong-arch configs: 6.
    # mirror (amd64 and arm64 required): both children and their configs, 5 configs: 9. alerts: 2 configs.
    # Artifacts and charts are told apart by their manifest alone.
    first_reads = 8 * 6 + 4 * 9 + 2 * 2
    assert report.registry_requests == listings + tags_read + first_reads


SUGGESTIONS = {
    "reimport-sweeps-that-tag": (("mirror/lib-01", "t06"), "platform-guard audit {host}/mirror/lib-01:t06 --policy "
                                                           "policy.yaml --remediate"),
    "quarantine-sweeps-that-tag": (("team/app-02", "t07"), "platform-guard audit {host}/team/app-02:t07 --policy "
                                                           "policy.yaml --remediate"),
    "alert-checks-the-image": (("alerts/svc-01", "t09"), "platform-guard check {host}/alerts/svc-01:t09 --policy "
                                                         "policy.yaml"),
}


@pytest.mark.parametrize(("key", "command"), SUGGESTIONS.values(), ids=SUGGESTIONS.keys())
def test_each_violation_comes_with_the_command_that_deals_with_it(seeded: Seed, key: tuple[str, str],
                                                                 command: str) -> None:
    """A dry-run violation to re-import or quarantine suggests the remediating sweep of that one tag; an alert a
    check."""
    options = SweepOptions(repositories=key[0], policy_hint="policy.yaml")
    report = Sweep(seeded.host, policy=seeded.policy, registries=directory_for(seeded), options=options).run()
    [item] = [item for item in report.items if (item.repository, item.tag) == key]
    assert item.suggestion == command.format(upstream=seeded.upstream, host=seeded.host)


# -- pagination, generic and ACR -----------------------------------------------------------------------------


class PagingProxy:
    """GET/HEAD proxy to a registry that pages `/v2/<name>/tags/list` by `n` and `last` (distribution 2.8 does not)
    and serves ACR's `/acr/v1/_catalog` and `/acr/v1/<name>/_tags` (with digests) in the documented shapes, with
    `Link` headers; every request path is kept in `seen`."""

    def __init__(self, registry_host: str) -> None:
        self.registry = f"http://{registry_host}"
        self.seen: list[str] = []
        proxy = self

        class Handler(QuietRequestHandler):
            def do_GET(self) -> None:
                proxy.handle(self, "GET")

            def do_HEAD(self) -> None:
                proxy.handle(self, "HEAD")

        self._http = LocalHttpServer(Handler, name="paging-proxy")
        self.host = self._http.host

    def __enter__(self) -> "PagingProxy":
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def _upstream(self, method: str, path: str, accept: str | None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.registry + path, method=method, headers={"Accept": accept or "*/*"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def _names(self, path: str, key: str) -> list[str]:
        status, _, body = self._upstream("GET", path, "application/json")
        return sorted(json.loads(body).get(key) or []) if status == 200 else []

    @staticmethod
    def _page(names: list[str], query: dict[str, list[str]], path: str,
              extra: str = "") -> tuple[list[str], dict[str, str]]:
        size = int(query.get("n", ["1000"])[0])
        last = query.get("last", [""])[0]
        rest = [name for name in names if name > last]
        headers = {"Content-Type": "application/json"}
        if len(rest) > size:
            headers["Link"] = f'<{path}?n={size}&last={urllib.parse.quote(rest[size - 1])}{extra}>; rel="next"'
        return rest[:size], headers

    def handle(self, handler: QuietRequestHandler, method: str) -> None:
        self.seen.append(handler.path)
        parts = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(parts.query)
        path = parts.path
        if path.startswith("/v2/") and path.endswith("/tags/list"):
            name = path[len("/v2/"):-len("/tags/list")]
            page, headers = self._page(self._names(f"/v2/{name}/tags/list", "tags"), query, path)
            body = json.dumps({"name": name, "tags": page}).encode()
        elif path == "/acr/v1/_catalog":
            page, headers = self._page(self._names("/v2/_catalog?n=1000", "repositories"), query, path,
                                       "&api-version=2021-07-01")
            body = json.dumps({"repositories": page}).encode()
        elif path.startswith("/acr/v1/") and path.endswith("/_tags"):
            name = path[len("/acr/v1/"):-len("/_tags")]
            page, headers = self._page(self._names(f"/v2/{name}/tags/list", "tags"), query, path,
                                       "&api-version=2021-07-01")
            tags = [{"name": tag, "digest": fetch_manifest(self.registry[7:], name, tag).digest,
                     "createdTime": "2026-11-26T00:00:00Z", "lastUpdateTime": "2026-11-26T00:00:00Z", "signed": False,
                     "changeableAttributes": {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True,
                                              "listEnabled": True}} for tag in page]
            body = json.dumps({"registry": "guardtest.azurecr.io", "imageName": name, "tags": tags}).encode()
        else:
            status, upstream_headers, body = self._upstream(method, handler.path, handler.headers.get("Accept"))
            keep = ("Content-Type", "Docker-Content-Digest", "Link", "Content-Length")
            headers = {key: value for key, value in upstream_headers.items() if key in keep}
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if method == "GET":
                handler.wfile.write(body)
            return
        handler.send_body(200, body, headers)


def test_listings_follow_link_pagination_with_a_small_page_size(seeded: Seed) -> None:
    """With 3 names a page the catalog (paged by the registry) and every tag list (paged by the proxy) are read
    page by page, and the totals are the same."""
    with PagingProxy(seeded.host) as proxy:
        settings = Settings(registries=(proxy.host,), policy=seeded.policy)
        report = Sweep(proxy.host, policy=seeded.policy, registries=registry_directory_for(settings),
                       options=SweepOptions(page_size=3)).run()
    catalog = [path for path in proxy.seen if path.startswith("/v2/_catalog")]
    tag_pages = [path for path in proxy.seen if path.startswith("/v2/team/app-05/tags/list")]
    assert len(catalog) == 7 and all("n=3" in path for path in catalog) and "last=" in catalog[-1]  # 21 names
    assert len(tag_pages) == 4 and "last=t08" in tag_pages[-1]  # 10 tags: 3 + 3 + 3 + 1
    assert report.totals() == seeded.count()
    assert report.skipped_repositories == ("quarantine/team/app-00",)


def test_contract_acr_listing_apis_give_the_digests_so_no_tag_is_read_by_name(seeded: Seed) -> None:
    """On ACR the sweep lists with /acr/v1/_catalog and /acr/v1/<name>/_tags (paged), takes each tag's digest from
    the listing, and reads manifests by digest only, once per distinct digest."""
    with PagingProxy(seeded.host) as proxy:
        directory = directory_for(seeded, factory=lambda host: AcrRegistry(host, endpoint=f"http://{proxy.host}"))
        report = Sweep("guardtest.azurecr.io", policy=seeded.policy, registries=directory,
                       options=SweepOptions(page_size=4, repositories="team/*")).run()
    catalog = [path for path in proxy.seen if path.startswith("/acr/v1/_catalog")]
    tag_pages = [path for path in proxy.seen if path.startswith("/acr/v1/team/app-00/_tags")]
    assert len(catalog) == 6 and all("n=4" in path for path in catalog)  # 21 repositories, 4 a page
    assert len(tag_pages) == 3 and "last=t07" in tag_pages[-1]  # 10 tags, 4 a page
    assert not [path for path in proxy.seen if path.startswith("/v2/_catalog") or "/tags/list" in path]
    manifest_reads = [path for path in proxy.seen if "/manifests/" in path]
    assert manifest_reads and all("/manifests/sha256:" in path for path in manifest_reads)
    assert report.totals() == {"compliant": 48, "violation": 32, "ignored": 0, "failed": 0, "gone": 0}


# -- remediation ---------------------------------------------------------------------------------------------


def test_remediate_fixes_what_the_event_path_would_and_a_second_sweep_finds_nothing_to_do(fresh: Seed,
                                                                                          tmp_path: Path) -> None:
    """Re-importable violations point at the upstream's compliant index, the rest are moved to quarantine (alert
    rules only alerted), every outcome is recorded as a sweep's; a second sweep changes nothing."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    pipeline = pipeline_for(fresh, ledger)
    try:
        first = Sweep(fresh.host, policy=fresh.policy, registries=pipeline.registries, pipeline=pipeline,
                      options=SweepOptions(mode=REMEDIATE)).run()
        assert not first.failures and first.complete
        for (repository, tag), seeded in fresh.expected.items():
            present = tag in list_tags(fresh.host, repository)
            if seeded.action == "reimport" and seeded.upstream_digest is not None:
                assert fetch_manifest(fresh.host, repository, tag).digest == seeded.upstream_digest, (repository, tag)
            elif seeded.action in ("quarantine", "reimport"):
                assert not present, (repository, tag)
                kept = list_tags(fresh.host, f"quarantine/{repository}")
                assert any(name.endswith(seeded.digest.split(":")[1]) for name in kept), (repository, tag)
            else:
                assert fetch_manifest(fresh.host, repository, tag).digest == seeded.digest, (repository, tag)
        results = first.results()
        assert results["reimported"] == 16 and results["alerted"] == 10
        assert results["quarantined"] + results.get("duplicate", 0) + first.totals()["gone"] == 36  # 8×4 + 4
        recorded = ledger.outcomes(limit=10_000)
        assert {outcome.trigger for outcome in recorded} == {"sweep"}
        assert {outcome.schema for outcome in recorded} == {"sweep"}
        assert all(outcome.event_id.startswith(f"sweep-{first.sweep_id}-") for outcome in recorded)
        reimported = [outcome for outcome in recorded if outcome.result == "reimported"]
        assert all((outcome.source or "").startswith(f"{fresh.upstream}/library/lib-") for outcome in reimported)

        listed_before = {repository: sorted(list_tags(fresh.host, repository)) for repository, _ in fresh.expected}
        second = Sweep(fresh.host, policy=fresh.policy, registries=pipeline.registries, pipeline=pipeline,
                       options=SweepOptions(mode=REMEDIATE)).run()
        assert second.sweep_id != first.sweep_id
        assert set(second.results()) <= {"compliant", "ignored", "alerted"}
        assert {(item.repository, item.tag) for item in second.violations} == {
            key for key, seeded in fresh.expected.items() if seeded.action == "alert"
        }
        listed_after = {repository: sorted(list_tags(fresh.host, repository)) for repository, _ in fresh.expected}
        assert listed_after == listed_before
    finally:
        ledger.close()


def _event_outcome(seed: Seed, repository: str, tag: str, digest: str, ledger: SqliteLedger) -> Outcome:
    """Let the event path decide a push of repository:tag (remediation paused, so the tag stays as it is)."""
    paused = pipeline_for(seed, ledger, paused_repositories=("**",))
    event = PushEvent(event_id=f"evt-{tag}", schema="distribution", action="push", origin=seed.host,
                      repository=repository, tag=tag, digest=digest, media_type=None, size=None, artifact="image",
                      actor="laptop", user_agent="docker/27", occurred_at=None)
    outcome = paused.handle(event)
    assert outcome is not None and outcome.result == "alerted" and outcome.trigger == "event"
    return outcome


@pytest.mark.parametrize(
    ("sweep_clock", "result", "tag_left"),
    [("2000-01-01T00:00:00.000Z", "superseded", True), ("2999-01-01T00:00:00.000Z", "quarantined", False)],
    ids=["event-after-the-read-wins", "event-before-the-read-is-old-news"],
)
def test_an_event_outcome_newer_than_the_sweeps_read_is_not_overridden(
    small: Seed, tmp_path: Path, sweep_clock: str, result: str, tag_left: bool
) -> None:
    """When the ledger holds an event outcome for the tag received after the sweep read it, the sweep records
    `superseded` and leaves the tag alone; an older event outcome does not stop the remediation."""
    repository, tag = "team/app-03", "t06"
    digest = small.expected[(repository, tag)].digest
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        _event_outcome(small, repository, tag, digest, ledger)
        pipeline = pipeline_for(small, ledger)
        report = Sweep(small.host, policy=small.policy, registries=pipeline.registries, pipeline=pipeline,
                       options=SweepOptions(mode=REMEDIATE, repositories=repository),
                       clock=lambda: sweep_clock).run()
        [item] = [item for item in report.items if item.tag == tag]
        assert item.result == result
        assert (tag in list_tags(small.host, repository)) is tag_left
        [recorded] = ledger.outcomes(event_id=item.event_id or "")
        assert recorded.result == result and recorded.trigger == "sweep"
        if result == "superseded":
            assert "evt-t06" in (recorded.reason or "")
    finally:
        ledger.close()


def test_record_mode_records_violations_as_alerted_and_changes_nothing(small: Seed, tmp_path: Path) -> None:
    """The timer without remediation records every read tag's outcome; violations are `alerted`, no tag moves."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        pipeline = record_only(pipeline_for(small, ledger))
        report = Sweep(small.host, policy=small.policy, registries=pipeline.registries, pipeline=pipeline,
                       options=SweepOptions(mode="record", repositories="team/**")).run()
        assert report.results() == {"alerted": 4, "compliant": 6}
        assert sorted(list_tags(small.host, "team/app-03")) == TAGS
        assert len(ledger.outcomes(limit=100)) == 10
    finally:
        ledger.close()


def test_record_mode_keeps_the_time_limit_of_an_event(small: Seed, tmp_path: Path) -> None:
    """The record-only pipeline the timer builds obeys PLATFORM_GUARD_EVENT_DEADLINE_SECONDS like the one it copies."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        assert record_only(pipeline_for(small, ledger, event_deadline=17.0)).event_deadline == 17.0
    finally:
        ledger.close()


def test_reading_a_tag_that_the_registry_holds_up_ends_at_the_time_limit_of_an_event(
    small: Seed, tmp_path: Path
) -> None:
    """A registry answering every read after 3 s: each tag's reading is cut at the pipeline's 0.5 s limit and the tag
    is reported failed, instead of holding a sweep thread as long as the registry likes."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    with FaultProxy(small.host, rate=1.0, faults=("slow",), slow_seconds=3.0) as proxy:
        slow = Seed(proxy.host, small.upstream, small.policy_text, small.expected)
        try:
            pipeline = pipeline_for(slow, ledger, event_deadline=0.5)
            report = Sweep(proxy.host, policy=slow.policy, registries=pipeline.registries, pipeline=pipeline,
                           options=SweepOptions(mode="record", repositories="team/**")).run()
        finally:
            ledger.close()
    failed = [item for item in report.items if item.status == "failed"]
    assert failed and len(failed) == len(report.items), statuses(report)
    assert all("0.5" in (item.error or "") or "time" in (item.error or "") for item in failed), failed[0].error


# -- the command line and its reports -------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=90)


def test_audit_writes_markdown_and_html_reports_with_the_totals(seeded: Seed, tmp_path: Path) -> None:
    """`audit --report x.md` and `--report x.html` write the totals, the repositories and the violations with their
    commands; `--json` prints the same totals; a dry run exits 1 (violations) and creates no ledger."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(seeded.policy_text)
    env = {"PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db")}
    markdown, page = tmp_path / "audit.md", tmp_path / "audit.html"
    first = run_cli("audit", seeded.host, "--policy", str(policy), "--report", str(markdown), "--json", env=env)
    second = run_cli("audit", seeded.host, "--policy", str(policy), "--report", str(page), env=env)
    assert (first.returncode, second.returncode) == (1, 1), first.stderr + second.stderr
    assert json.loads(first.stdout)["totals"] == seeded.count()
    text = markdown.read_text()
    for status, count in seeded.count().items():
        assert f"| {status} | {count} |" in text
        assert f"<td>{status}</td><td class=\"n\">{count}</td>" in page.read_text()
    assert "| **total** | **200** |" in text and "<strong>200</strong>" in page.read_text()
    assert "| team/app-07 | 10 | 6 | 4 | 0 | 0 | 0 |" in text
    assert f"`platform-guard audit {seeded.host}/mirror/lib-03:t08 --policy {policy} --remediate`" in text
    assert "62 violation" in second.stdout and "report written to" in second.stdout
    assert not (tmp_path / "ledger.db").exists()


def test_audit_remediate_fixes_a_guarded_registry_and_exits_0_when_nothing_is_left(small: Seed,
                                                                                  tmp_path: Path) -> None:
    """`audit --remediate` quarantines the violations of a guarded registry, records them with `trigger: sweep` in
    the configured ledger, and exits 0; a dry run afterwards finds nothing to do."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(small.policy_text)
    env = {"PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db"), "PLATFORM_GUARD_REGISTRIES": small.host}
    fixed = run_cli("audit", f"{small.host}/team/**", "--policy", str(policy), "--remediate", "--json", env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["pending"] == 0
    assert sorted(list_tags(small.host, "team/app-03")) == TAGS[:6]
    outcomes = run_cli("outcomes", "--json", "--limit", "100", env=env)
    records = [json.loads(line) for line in outcomes.stdout.splitlines()]
    assert len(records) >= 9 and {record["trigger"] for record in records} == {"sweep"}
    again = run_cli("audit", f"{small.host}/team/**", "--policy", str(policy), env=env)
    assert again.returncode == 0 and "6 compliant" in again.stdout, again.stdout + again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1:1/Team/App"], "lower-case"),
        (["127.0.0.1:1", "--report", "audit.txt"], "must end in .md (Markdown), .html (HTML)"),
        (["127.0.0.1:1/team/*:1.0", "--remediate"], "no wildcard"),
        ([], "name the registry to audit"),
    ],
    ids=["bad-glob", "bad-report-name", "tag-of-a-glob", "no-registry"],
)
def test_audit_usage_errors_exit_2_naming_the_problem(args: list[str], message: str, tmp_path: Path) -> None:
    """Bad scopes and report names are refused before anything is read."""
    result = run_cli("audit", *args, env={"PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db")})
    assert result.returncode == 2 and message in result.stderr, result.stderr


# -- the timer trigger ---------------------------------------------------------------------------------------

FUNCTIONS_CHILD = """
import json, function_app
print(json.dumps({f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()]
                  for f in function_app.app.get_functions()}))
"""


@pytest.mark.parametrize(
    ("schedule", "declared"),
    [(None, False), ("off", False), ("  ", False), ("0 0 3 * * *", True)],
    ids=["unset-no-timer", "off-no-timer", "blank-no-timer", "schedule-declares-timer"],
)
def test_timer_is_declared_only_with_a_schedule_and_reads_it_from_the_app_setting(schedule: str | None,
                                                                                 declared: bool) -> None:
    """function_app declares `sweep` only when PLATFORM_GUARD_SWEEP_SCHEDULE holds a schedule, bound to the app
    setting by name (%…%), never on start-up; otherwise the app has exactly its other functions."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    if schedule is not None:
        environment["PLATFORM_GUARD_SWEEP_SCHEDULE"] = schedule
    result = subprocess.run([sys.executable, "-c", FUNCTIONS_CHILD], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    functions = json.loads(result.stdout)
    assert ("sweep" in functions) is declared
    assert sweep_timer_configured(environment) is declared
    if declared:
        assert functions["sweep"] == [{"direction": "IN", "type": "timerTrigger", "name": "timer",
                                       "schedule": "%PLATFORM_GUARD_SWEEP_SCHEDULE%", "runOnStartup": False}]


@pytest.fixture
def timer_function(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[func.TimerRequest], None]]:
    """The `sweep` function of a function_app module imported with the schedule set, as the host would call it."""
    import importlib.util

    monkeypatch.setenv("PLATFORM_GUARD_SWEEP_SCHEDULE", "0 0 3 * * *")
    spec = importlib.util.spec_from_file_location("function_app_with_sweep", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
    yield functions["sweep"]
    importer.entry.runtime.reset(None)


# Only team/app-03 is judged: every other repository is listed and counted, never read nor recorded.
TIMER_POLICY = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["team/app-03"]
  - repositories: ["**"]
    ignore: true
"""


@pytest.mark.parametrize(
    ("remediate", "results", "tags_left"),
    [(False, {"alerted": 4, "compliant": 6}, 10), (True, {"compliant": 6, "quarantined": 3}, 6)],
    ids=["record-only-by-default", "remediate-when-set"],
)
def test_timer_sweeps_every_guarded_registry_and_records_outcomes(
    small: Seed, tmp_path: Path, timer_function: Callable[[func.TimerRequest], None], remediate: bool,
    results: dict[str, int], tags_left: int,
) -> None:
    """The timer trigger, called with a TimerRequest like the host's, sweeps the guarded registry through the
    process-wide pipeline: recording `alerted` violations, or remediating them when PLATFORM_GUARD_SWEEP_REMEDIATE."""
    environ = {"PLATFORM_GUARD_REGISTRIES": small.host, "PLATFORM_GUARD_POLICY": TIMER_POLICY,
               "PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db"),
        "PLATFORM_GUARD_SWEEP_SCHEDULE": "0 0 3 * * *",
        "PLATFORM_GUARD_SWEEP_REMEDIATE": "true" if remediate else "false"}
    runtime = Runtime.from_settings(load_settings(environ))
    importer.entry.runtime.reset(runtime)
    try:
        timer_function(TimerRequest(past_due=False))
        recorded = runtime.pipeline.ledger.outcomes(limit=100)
        assert {outcome.repository for outcome in recorded} == {"team/app-03"}
        # The second tag on the shared wrong-arch digest finds it quarantined already (or gone: not recorded).
        assert Counter(outcome.result for outcome in recorded if outcome.result != "duplicate") == results
        assert {outcome.trigger for outcome in recorded} == {"sweep"}
        assert len(list_tags(small.host, "team/app-03")) == tags_left
    finally:
        runtime.pipeline.ledger.close()


# -- small pure parts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:5000", ("127.0.0.1:5000", None, None)),
     ("MyReg.azurecr.io/team/**", ("myreg.azurecr.io", "team/**", None)),
     ("127.0.0.1:5000/team/app", ("127.0.0.1:5000", "team/app", None))],
    ids=["registry-only", "host-lower-cased-with-glob", "one-repository"],
)
def test_parse_scope_splits_registry_and_glob(text: str, expected: tuple[str, str | None, str | None]) -> None:
    """REGISTRY[/REPO_GLOB] becomes the host and the repository glob (and no tag: tests/entry/test_audit_tag_scope.py)."""
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("not a host/x", "REGISTRY"), ("127.0.0.1:5000/team//app", "empty path segment"),
     ("127.0.0.1:5000/team/a**", "whole path segment")],
    ids=["bad-host", "empty-segment", "partial-double-star"],
)
def test_parse_scope_refuses_what_is_not_a_scope(text: str, message: str) -> None:
    """A scope that is not a registry host with a valid repository glob raises ValueError saying why."""
    with pytest.raises(ValueError, match=message):
        parse_scope(text)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [(("s1", "r", "a", "1", "sha256:aa"), ("s1", "r", "a", "1", "sha256:aa"), True),
     (("s1", "r", "a", "1", "sha256:aa"), ("s2", "r", "a", "1", "sha256:aa"), False),
     (("s1", "r", "a", "1", "sha256:aa"), ("s1", "r", "a", "1", "sha256:bb"), False),
     (("s1", "r", "a", "1", "sha256:aa"), ("s1", "r", "a", "2", "sha256:aa"), False)],
    ids=["same-inputs-same-id", "new-sweep-new-id", "new-digest-new-id", "other-tag-other-id"],
)
def test_sweep_event_ids_derive_from_registry_repository_tag_digest_and_sweep(
    first: tuple[str, ...], second: tuple[str, ...], same: bool
) -> None:
    """A re-run sweep is a new decision; within one sweep the same tag and digest keep their id."""
    assert (sweep_event_id(*first) == sweep_event_id(*second)) is same
    assert sweep_event_id(*first).startswith(f"sweep-{first[0]}-")


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"PLATFORM_GUARD_SWEEP_SCHEDULE": "0 3 * * *"}, "6 fields"),
     ({"PLATFORM_GUARD_SWEEP_SCHEDULE": "0 0 3 * * * *"}, "6 fields"),
     ({"PLATFORM_GUARD_SWEEP_REMEDIATE": "maybe"}, "PLATFORM_GUARD_SWEEP_REMEDIATE"),
     ({"PLATFORM_GUARD_SWEEP_PARALLEL": "0"}, "PLATFORM_GUARD_SWEEP_PARALLEL"),
     ({"PLATFORM_GUARD_SWEEP_PARALLEL": "65"}, "from 1 to 64")],
    ids=["five-field-cron", "seven-fields", "remediate-not-a-flag", "parallel-zero", "parallel-too-many"],
)
def test_bad_sweep_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    """A bad schedule, flag or worker count raises SettingsError naming the setting."""
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_sweep_settings_default_to_off_dry_and_eight_workers() -> None:
    """Without sweep settings there is no schedule, no remediation and 8 workers; `off` means no schedule."""
    assert {"PLATFORM_GUARD_SWEEP_SCHEDULE", "PLATFORM_GUARD_SWEEP_REMEDIATE",
            "PLATFORM_GUARD_SWEEP_PARALLEL"} <= set(KNOWN_SETTINGS)
    defaults = load_settings({})
    assert (defaults.sweep_schedule, defaults.sweep_remediate, defaults.sweep_parallel) == (None, False, 8)
    assert load_settings({"PLATFORM_GUARD_SWEEP_SCHEDULE": "off"}).sweep_schedule is None
    loaded = load_settings({"PLATFORM_GUARD_SWEEP_SCHEDULE": " 0  30 2 * * 1-5 ",
                            "PLATFORM_GUARD_SWEEP_REMEDIATE": "yes"})
    assert (loaded.sweep_schedule, loaded.sweep_remediate) == ("0 30 2 * * 1-5", True)


def test_reports_render_every_section(seeded: Seed) -> None:
    """Markdown and HTML carry the heading, totals, per-repository rows and violations; HTML escapes names."""
    report = Sweep(seeded.host, policy=seeded.policy, registries=directory_for(seeded),
                   options=SweepOptions(repositories="alerts/*")).run()
    markdown, page = render_markdown(report), render_html(report)
    assert f"# Platform Guard audit of {seeded.host}/alerts/\\*" in markdown  # `*` escaped: Markdown, not emphasis
    assert "## Violations (10 tags in 2 repositories)" in markdown
    assert "<h2>Violations (10 tags in 2 repositories)</h2>" in page
    assert "| alerts/svc-00 | 10 | 5 | 5 | 0 | 0 | 0 |" in markdown
    assert page.startswith("<!doctype html>") and "<script" not in page


def test_a_tag_that_cannot_be_judged_is_failed_with_a_check_command(registry: LocalRegistry,
                                                                    builder: ImageBuilder) -> None:
    """An image whose config names no platform is `failed` with the reason and a `check` command; the others are
    judged as usual, and the report is not complete without them."""
    from testbed.images import OCI_CONFIG, OCI_MANIFEST, canonical_json

    config = builder.add_blob(canonical_json({"config": {}, "rootfs": {"type": "layers", "diff_ids": []}}), OCI_CONFIG)
    broken = builder.raw_manifest(canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                                  "config": config.to_json(), "layers": []}), OCI_MANIFEST)
    push(builder, broken, registry.host, "team/odd", "broken", via="raw")
    push(builder, single(builder, "linux/amd64"), registry.host, "team/odd", "fine", via="raw")
    policy = parse_policy("version: 1\n")
    directory = registry_directory_for(Settings(registries=(registry.host,), policy=policy))
    report = Sweep(registry.host, policy=policy, registries=directory).run()
    assert report.totals() == {"compliant": 1, "violation": 0, "ignored": 0, "failed": 1, "gone": 0}
    [failed] = report.failures
    assert failed.tag == "broken" and "config" in (failed.error or "")
    assert failed.suggestion == f"platform-guard check {registry.host}/team/odd:broken"
    assert failed.pending and report.pending == (failed,)


def test_a_spent_time_budget_lists_nothing_and_leaves_the_report_incomplete(seeded: Seed) -> None:
    """With no time left nothing is started, listing included: not one request, and the report says so."""
    report = Sweep(seeded.host, policy=seeded.policy, registries=directory_for(seeded),
                   options=SweepOptions(repositories="alerts/*", budget_seconds=0)).run()
    assert (len(report.items), report.not_swept, report.registry_requests) == (0, 0, 0)
    assert (report.catalog_complete, report.complete) == (False, False)
    assert "incomplete: the time budget ran out before the repositories were all listed" in render_markdown(report)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"mode": "fix-everything"}, "sweep mode"), ({"parallel": 0}, "between 1 and 64"),
     ({"page_size": 0}, "at least 1"), ({"repositories": "Team/*"}, "lower-case"),
     ({"budget_seconds": -1.0}, "must not be negative")],
    ids=["unknown-mode", "no-workers", "empty-pages", "upper-case-glob", "negative-budget"],
)
def test_sweep_options_refuse_what_cannot_work(options: dict[str, Any], message: str) -> None:
    """Options are checked when made, with a message naming the option."""
    with pytest.raises(ValueError, match=message):
        SweepOptions(**options)


def test_progress_bar_counts_tags_on_a_terminal() -> None:
    """The audit's bar shows tags swept of tags listed, and draws nothing when not on a terminal."""
    import io

    from importer.app.sweep import SweepItem
    from importer.entry.progress import TagProgressBar

    shown, hidden = io.StringIO(), io.StringIO()
    bars = [TagProgressBar("auditing r", stream=shown, enabled=True, width=10),
            TagProgressBar("auditing r", stream=hidden)]
    for bar in bars:
        bar.listed(4)
        bar.swept(SweepItem("r", "team/app", "1", "compliant"))
        bar.swept(SweepItem("r", "team/app", "2", "compliant"))
        bar.finish()
    assert shown.getvalue().endswith("\rauditing r [#####.....]  2/4 tags   50%\n")
    assert hidden.getvalue() == ""
