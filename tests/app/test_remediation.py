"""Remediation end to end on real registries: re-import from an upstream, quarantine, release, and the safety rules.

A guarded registry sends notifications to the local host; an upstream registry holds the right variants. Events that
must be raced or repeated are handed to the pipeline directly, built like the parsers build them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app.remediation import quarantine_tag, registry_origin
from importer.core.events import PushEvent
from importer.core.media_types import OCI_MANIFEST
from importer.core.quarantine_names import QuarantineOrigin, parse_quarantine_tag, quarantine_repository
from importer.core.reference import parse_reference
from importer.core.referrers import referrers_tag
from importer.entry.cli import main
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import ImageBuilder, multi, single
from testbed.push import fetch_manifest, push, push_raw_manifest
from testbed.registry import LocalRegistry
from testbed.stack import GuardedRegistry, is_push_of


def reimport_policy(upstream_host: str, *, require: str = "[linux/amd64, linux/arm64]", extra: str = "") -> str:
    return (
        "version: 1\n"
        "defaults:\n"
        f"  require: {require}\n"
        "  on_violation: reimport\n"
        f"  upstream: \"{upstream_host}/mirror/{{repository}}\"\n"
        f"{extra}"
    )


QUARANTINE_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"


def client(host: str) -> OciRegistry:
    return OciRegistry(host)


def settled(stack: GuardedRegistry, repository: str, tag: str, digest: str) -> None:
    """Wait until the push of `digest` to repository:tag (our own write) has its own outcome, and check it."""
    outcomes = stack.wait_until(
        lambda found: any(is_push_of(o, repository, tag) and o.digest == digest and o.result != "reimported"
                          for o in found)
    )
    own = [o for o in outcomes if is_push_of(o, repository, tag) and o.digest == digest]
    assert own[-1].result == "compliant", own[-1].reason


def test_arm64_push_is_reimported_as_the_upstream_index(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """An arm64-only push is replaced by the upstream's index; the offender is kept; our own push settles compliant."""
    good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"], attestations=True), upstream.host,
                "mirror/team/app", "1.0")
    stack = guarded(reimport_policy(upstream.host))
    bad = push(builder, single(builder, "linux/arm64", seed="laptop"), stack.registry.host, "team/app", "1.0")

    outcome = stack.wait_for("team/app", tag="1.0")
    assert outcome.result == "reimported", outcome.reason or outcome.error
    assert (outcome.digest, outcome.new_digest) == (bad, good)
    assert outcome.source == f"{upstream.host}/mirror/team/app:1.0@{good}"
    assert outcome.preserved_as == f"{stack.registry.host}/quarantine/team/app:{quarantine_tag('1.0', bad)}"
    guarded_client = client(stack.registry.host)
    assert guarded_client.head_manifest("team/app", "1.0").digest == good  # type: ignore[union-attr]
    assert guarded_client.head_manifest("quarantine/team/app", quarantine_tag("1.0", bad)).digest == bad  # type: ignore[union-attr]
    settled(stack, "team/app", "1.0", good)


def test_index_missing_amd64_is_fixed_from_upstream(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """An index without amd64 is replaced by the upstream index that has it."""
    good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/team/api", "2")
    stack = guarded(reimport_policy(upstream.host))
    push(builder, multi(builder, ["linux/arm64", "linux/arm/v7"], seed="x"), stack.registry.host, "team/api", "2")
    outcome = stack.wait_for("team/api", tag="2")
    assert (outcome.result, outcome.new_digest) == ("reimported", good)
    assert outcome.missing == ("linux/amd64",)
    settled(stack, "team/api", "2", good)


def test_no_upstream_variant_falls_back_to_quarantine_and_release_restores_it(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a compliant upstream variant the image is quarantined, and `release` puts it back byte for byte."""
    push(builder, single(builder, "linux/arm64", seed="up"), upstream.host, "mirror/team/tool", "3")  # upstream: arm64 only
    stack = guarded(reimport_policy(upstream.host, require="[linux/amd64]"))
    bad = push(builder, single(builder, "linux/arm64", seed="laptop"), stack.registry.host, "team/tool", "3")
    original = fetch_manifest(stack.registry.host, "team/tool", bad)

    outcome = stack.wait_for("team/tool", tag="3")
    assert outcome.result == "quarantined", outcome.reason or outcome.error
    assert "re-import not possible" in (outcome.reason or "") and outcome.affected_tags == ("3",)
    guarded_client = client(stack.registry.host)
    assert guarded_client.head_manifest("team/tool", "3") is None
    kept_tag = quarantine_tag("3", bad)
    assert outcome.preserved_as == f"{stack.registry.host}/quarantine/team/tool:{kept_tag}"
    assert fetch_manifest(stack.registry.host, "quarantine/team/tool", kept_tag).body == original.body

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(QUARANTINE_POLICY)
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(stack.settings.ledger_path))
    capsys.readouterr()
    assert main(["release", outcome.preserved_as, "--policy", str(policy_file)]) == 0
    assert "released" in capsys.readouterr().out
    restored = fetch_manifest(stack.registry.host, "team/tool", "3")
    assert (restored.digest, restored.body, restored.media_type) == (bad, original.body, original.media_type)
    again = stack.wait_until(lambda found: len(_decisions(found, "team/tool", "3")) >= 2)
    last = _decisions(again, "team/tool", "3")[-1]
    assert last.result == "ignored" and "released on purpose" in (last.reason or "")


def test_forbidden_platform_is_removed_by_a_filtered_index(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """An upstream index with a forbidden platform is re-imported without it (a new index, new digest)."""
    upstream_digest = push(builder, multi(builder, ["linux/amd64", "linux/arm64", "windows/amd64"], attestations=True),
                           upstream.host, "mirror/team/web", "4")
    policy = reimport_policy(upstream.host) + '  forbid: ["windows/*"]\n'
    stack = guarded(policy)
    push(builder, multi(builder, ["linux/amd64", "windows/amd64"], seed="w"), stack.registry.host, "team/web", "4")
    outcome = stack.wait_for("team/web", tag="4")
    assert outcome.result == "reimported", outcome.reason or outcome.error
    assert outcome.new_digest != upstream_digest
    index = json.loads(fetch_manifest(stack.registry.host, "team/web", "4").body)
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]}
    assert platforms == {"linux/amd64", "linux/arm64", "unknown/unknown"}  # attestations of kept children stay
    settled(stack, "team/web", "4", outcome.new_digest or "")


def test_flatten_points_the_tag_at_the_single_platform_manifest(
    guarded: Callable[..., GuardedRegistry], upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """With `flatten: true` the tag is re-pointed at the required platform's own manifest, not an index."""
    amd64 = builder.image("linux/amd64", seed="flat")
    push(builder, builder.index([amd64, builder.image("linux/arm64", seed="flat")]), upstream.host, "mirror/team/fn", "5")
    policy = reimport_policy(upstream.host, require="[linux/amd64]") + "  flatten: true\n"
    stack = guarded(policy)
    push(builder, single(builder, "linux/arm64", seed="laptop"), stack.registry.host, "team/fn", "5")
    outcome = stack.wait_for("team/fn", tag="5")
    assert (outcome.result, outcome.new_digest) == ("reimported", amd64.digest), outcome.reason
    assert fetch_manifest(stack.registry.host, "team/fn", "5").media_type == OCI_MANIFEST


def _event(host: str, repository: str, tag: str, digest: str, event_id: str) -> PushEvent:
    return PushEvent(event_id=event_id, schema="distribution", action="push", origin=host, repository=repository,
                     tag=tag, digest=digest, media_type=OCI_MANIFEST, size=1, artifact="image", actor=None,
                     user_agent="test", occurred_at=None)


def test_tag_pushed_again_before_remediation_is_superseded(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path
) -> None:
    """A tag that moved between the event and the fix is left alone (`superseded`); the old image is still kept."""
    with LocalRegistry(tmp_path / "quiet") as quiet:  # no notifications: the late event is delivered by the test
        stack = guarded(QUARANTINE_POLICY, extra_registries=(quiet.host,))
        bad = push(builder, single(builder, "linux/arm64"), quiet.host, "team/race", "1")
        newer = push(builder, single(builder, "linux/amd64"), quiet.host, "team/race", "1")
        outcome = stack.pipeline.handle(_event(quiet.host, "team/race", "1", bad, "late-event"))
        assert outcome is not None and outcome.result == "superseded", outcome
        quiet_client = client(quiet.host)
        assert quiet_client.head_manifest("team/race", "1").digest == newer  # type: ignore[union-attr]
        assert outcome.preserved_as == f"{quiet.host}/quarantine/team/race:{quarantine_tag('1', bad)}"
        assert quiet_client.head_manifest("quarantine/team/race", quarantine_tag("1", bad)).digest == bad  # type: ignore[union-attr]


def test_the_same_event_five_times_concurrently_remediates_once(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path
) -> None:
    """Five concurrent deliveries of one event and five of distinct events for one push give one remediation."""
    with LocalRegistry(tmp_path / "quiet") as quiet:  # no notifications: the test delivers the events itself
        stack = guarded(QUARANTINE_POLICY, extra_registries=(quiet.host,))
        bad = push(builder, single(builder, "linux/arm64"), quiet.host, "team/dup", "1")
        same = [_event(quiet.host, "team/dup", "1", bad, "same-id")] * 5
        distinct = [_event(quiet.host, "team/dup", "1", bad, f"id-{n}") for n in range(5)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            outcomes = list(pool.map(stack.pipeline.handle, same + distinct))
        results = sorted(o.result for o in outcomes if o is not None)
        assert results.count("quarantined") == 1, results
        assert results.count("duplicate") >= 4  # the repeated id; distinct ids racing the claim are duplicates too
        assert set(results) <= {"quarantined", "duplicate", "superseded"}, results
        quarantined = client(quiet.host).list_tags("quarantine/team/dup")
        assert sorted(quarantined) == sorted([quarantine_tag("1", bad), referrers_tag(bad)])  # the image, its origin


def _decisions(outcomes: list[Any], repository: str, tag: str) -> list[Any]:
    """Outcomes of pushes to repository:tag (not the delete events our own quarantine causes)."""
    return [o for o in outcomes if o.repository == repository and o.tag == tag and o.kind is not None]


def test_loop_guard_trips_when_a_bad_image_keeps_coming_back(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder
) -> None:
    """The third remediation of one tag within the window is refused with a loop-guard alert."""
    stack = guarded(QUARANTINE_POLICY, loop_limit=2)
    image = single(builder, "linux/arm64")
    push(builder, image, stack.registry.host, "team/loop", None)  # blobs and manifest by digest: nothing to decide
    results = []
    for round_number in range(3):
        # The tag alone, again and again, like a CI job re-pushing: it is quarantined before a read-back could see it.
        push_raw_manifest(stack.registry.host, "team/loop", "1", builder.blob(image.digest), image.media_type)
        decided = stack.wait_until(lambda found: len(_decisions(found, "team/loop", "1")) > round_number)
        results.append(_decisions(decided, "team/loop", "1")[-1])
    assert [o.result for o in results] == ["quarantined", "quarantined", "alerted"]
    assert results[-1].alert == "loopguard" and "loop guard" in (results[-1].reason or "")
    assert client(stack.registry.host).head_manifest("team/loop", "1") is not None  # left as it is


class _Receiver(QuietRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.read_body()
        type(self).received.append((dict(self.headers.items()), json.loads(body)))
        self.send_body(200)


def test_quarantine_alert_reaches_the_webhook_as_a_cloud_event(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder
) -> None:
    """A quarantine posts a CloudEvent telling what was pushed, expected, done, where it is kept and how to release."""
    _Receiver.received = []
    with LocalHttpServer(_Receiver) as receiver:
        stack = guarded(QUARANTINE_POLICY, alert_webhook_url=f"{receiver.url}/alerts",
                        alert_webhook_token="alert-token-0123456789")
        bad = push(builder, single(builder, "linux/arm64"), stack.registry.host, "team/alerted", "7")
        outcome = stack.wait_for("team/alerted", tag="7")
        assert outcome.result == "quarantined"
        stack.wait_until(lambda _: bool(_Receiver.received))
    headers, event = _Receiver.received[0]
    assert headers["Authorization"] == "Bearer alert-token-0123456789"
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    assert (event["specversion"], event["type"]) == ("1.0", "io.platformguard.image.quarantined")
    summary = event["data"]["summary"]
    assert summary["pushed"]["reference"].endswith(f"team/alerted:7@{bad}")
    assert summary["expected"]["missing"] == ["linux/amd64"]
    assert summary["done"]["result"] == "quarantined"
    assert summary["kept_at"] == outcome.preserved_as
    assert summary["release_command"] == f"platform-guard release {outcome.preserved_as}"


# -- long names: quarantined under a shortened name, released to exactly their origin ---------------------------

LONG_TAG = "v1.2.3-" + "build" * 18 + "-abc"  # 100 characters: `<tag>.sha256-<hex>` would be 172
LONG_REPOSITORY = "team/" + "/".join(f"component-{n:02d}" for n in range(18)) + "/app"  # 242 characters
PREFIXED_QUARANTINE = QUARANTINE_POLICY + 'quarantine:\n  repository: "quarantined-images/{repository}"\n'
LONG_NAMES = {
    # id: (policy, repository, tag)
    "tag-of-100-characters": (QUARANTINE_POLICY, "team/app", LONG_TAG),
    "repository-of-242-characters": (PREFIXED_QUARANTINE, LONG_REPOSITORY, "1.0"),
}


def _release(stack: GuardedRegistry, tmp_path: Path, policy: str, reference: str, ledger: Path,
             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `python -m importer release REFERENCE` with `ledger` as the ledger; (exit code, what it printed)."""
    policy_file = tmp_path / "release-policy.yaml"
    policy_file.write_text(policy)
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(ledger))
    capsys.readouterr()
    code = main(["release", reference, "--policy", str(policy_file)])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


@pytest.mark.parametrize(("policy", "repository", "tag"), LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_long_names_are_quarantined_and_released_to_exactly_their_origin(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, policy: str, repository: str, tag: str,
) -> None:
    """A tag or repository too long for today's quarantine names is quarantined (never failed) under a shortened,
    valid name; `release` puts it back on exactly the original repository:tag, from the ledger's record, and with
    another ledger from the origin artifact kept next to the image."""
    stack = guarded(policy)
    host = stack.registry.host
    # By plain HTTP: skopeo counts the host in the 255 characters of a name, the registry does not.
    bad = push(builder, single(builder, "linux/arm64", seed="long"), host, repository, tag, via="raw")
    original = fetch_manifest(host, repository, bad)
    outcome = stack.wait_for(repository, tag=tag)
    assert outcome.result == "quarantined", (outcome.reason, outcome.error)
    kept = parse_reference(outcome.preserved_as or "")
    template = stack.pipeline.policy.quarantine.repository
    assert (kept.repository, kept.tag) == (quarantine_repository(template, repository), quarantine_tag(tag, bad))
    shortened_tag = parse_quarantine_tag(kept.tag or "")
    assert shortened_tag is not None and shortened_tag.digest == bad
    assert shortened_tag.shortened or stack.pipeline.policy.quarantine.original_of(kept.repository) is None
    guarded_client = client(host)
    assert guarded_client.head_manifest(repository, tag) is None
    assert fetch_manifest(host, kept.repository, kept.tag or "").body == original.body
    origin = QuarantineOrigin(repository, tag, bad)
    assert stack.ledger.quarantine_origin(host, kept.repository, kept.tag or "") == origin
    assert registry_origin(guarded_client, kept.repository, bad, kept_tag=kept.tag) == origin

    code, printed = _release(stack, tmp_path, policy, str(kept), stack.settings.ledger_path, monkeypatch, capsys)
    assert code == 0, printed
    assert f"→ {host}/{repository}:{tag} " in printed
    restored = fetch_manifest(host, repository, tag)
    assert (restored.digest, restored.body, restored.media_type) == (bad, original.body, original.media_type)
    again = stack.wait_until(lambda found: len(_decisions(found, repository, tag)) >= 2)
    assert _decisions(again, repository, tag)[-1].result == "ignored"  # released on purpose

    guarded_client.delete_manifest(repository, bad)  # gone again; this time the ledger at hand knows nothing
    code, printed = _release(stack, tmp_path, policy, str(kept), tmp_path / "other-ledger.db", monkeypatch, capsys)
    assert code == 0, printed
    assert fetch_manifest(host, repository, tag).digest == bad


def test_a_shortened_name_nobody_knows_is_not_guessed(
    registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image under a shortened quarantine name with no ledger record and no origin artifact is not released to
    a guess: `release` says to name the destination with --to, and --to still works."""
    bad = push(builder, single(builder, "linux/arm64", seed="unknown"), registry.host, "team/app", None)
    kept_tag = quarantine_tag(LONG_TAG, bad)
    push(builder, single(builder, "linux/arm64", seed="unknown"), registry.host, "quarantine/team/app", kept_tag)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(QUARANTINE_POLICY)
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(tmp_path / "empty.db"))
    reference = f"{registry.host}/quarantine/team/app:{kept_tag}"
    capsys.readouterr()
    assert main(["release", reference, "--policy", str(policy_file)]) == 2
    assert "shortened name" in capsys.readouterr().err
    assert main(["release", reference, "--policy", str(policy_file), "--to", f"team/app:{LONG_TAG}"]) == 0
    assert fetch_manifest(registry.host, "team/app", LONG_TAG).digest == bad


def test_an_image_quarantined_before_origins_were_recorded_is_released_by_its_name(
    registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a ledger record or an origin artifact, an image under today's name goes back where the name says."""
    bad = push(builder, single(builder, "linux/arm64", seed="old"), registry.host, "quarantine/team/old", None)
    push(builder, single(builder, "linux/arm64", seed="old"), registry.host, "quarantine/team/old",
         quarantine_tag("1.0", bad))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(QUARANTINE_POLICY)
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(tmp_path / "empty.db"))
    reference = f"{registry.host}/quarantine/team/old:{quarantine_tag('1.0', bad)}"
    assert main(["release", reference, "--policy", str(policy_file)]) == 0
    assert fetch_manifest(registry.host, "team/old", "1.0").digest == bad


@pytest.mark.parametrize("owner", ["event-1", None], ids=["owned-claims-are-renewed", "anonymous-claims-are-not"])
def test_a_remediation_claim_is_renewed_while_the_work_goes_on(tmp_path: Path, owner: str | None) -> None:
    """With an owner, a claim held past its lease is renewed, so no other owner takes it over mid-work; it is free
    again when the work ends. Without one, it runs out after its lease, as before."""
    import time

    from importer.adapters.ledger.sqlite import SqliteLedger
    from importer.app import remediation
    from importer.app.settings import Settings
    from importer.core.policy import DEFAULT_POLICY
    from importer.entry.composition import registry_directory_for

    ledger = SqliteLedger(tmp_path / "ledger.db")
    remediator = remediation.Remediator(DEFAULT_POLICY, registry_directory_for(Settings()), ledger,
                                        claim_lease_seconds=0.3)
    key = "127.0.0.1:5000/team/app:1@sha256:" + "a" * 64
    try:
        with remediator._claimed(key, owner) as held:
            assert held
            time.sleep(0.8)  # past the 0.3 s lease more than twice
            taken_over = ledger.claim_remediation(key, lease_seconds=10, now=time.time(), owner="someone-else")
            if taken_over:
                ledger.finish_remediation(key, owner="someone-else")
        assert taken_over is (owner is None)
        assert ledger.claim_remediation(key, lease_seconds=10, now=time.time(), owner="afterwards")
    finally:
        ledger.close()


# -- release only from quarantine: an image elsewhere is not exempted from the policy by accident --------------------

ELSEWHERE_POLICY = QUARANTINE_POLICY + 'quarantine:\n  repository: "quarantined-images/{repository}"\n'
RELEASES = {
    # id: (policy, what to release (GUARDED: team/app:1, GUARDED@: it by digest, KEPT: its copy in
    #      quarantine/team/app), extra arguments, destination, exit code, what the refusal says)
    "a-guarded-image-with-to": (QUARANTINE_POLICY, "GUARDED", ["--to", "team/other:1"], "team/other:1", 2,
                                "is not in a quarantine repository"),
    "a-guarded-image-by-digest-with-to": (QUARANTINE_POLICY, "GUARDED@", ["--to", "team/app:2"], "team/app:2", 2,
                                          "is not in a quarantine repository"),
    "a-guarded-image-without-to": (QUARANTINE_POLICY, "GUARDED", [], "team/app:1", 2,
                                   "is not in a quarantine repository"),
    "a-repository-the-policy-does-not-quarantine-to": (ELSEWHERE_POLICY, "KEPT", ["--to", "team/other:1"],
                                                       "team/other:1", 2, "is not in a quarantine repository"),
    "a-guarded-image-with-any-source": (QUARANTINE_POLICY, "GUARDED", ["--to", "team/other:1", "--any-source"],
                                        "team/other:1", 0, None),
    "a-quarantined-image-with-to": (QUARANTINE_POLICY, "KEPT", ["--to", "team/restored:1"], "team/restored:1", 0,
                                    None),
    "a-quarantined-image-home": (QUARANTINE_POLICY, "KEPT", [], "team/app:1", 0, None),
}


@pytest.mark.parametrize(("policy", "source", "extra", "destination", "code", "refusal"), RELEASES.values(),
                         ids=RELEASES.keys())
def test_release_takes_images_only_from_quarantine_unless_told_any_source(
    registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, policy: str, source: str, extra: list[str], destination: str, code: int,
    refusal: str | None,
) -> None:
    """`release` copies from the policy's quarantine repositories (with or without --to); an image anywhere else is
    refused with exit 2, nothing written and nothing marked released, unless --any-source says so on purpose."""
    from importer.adapters.ledger.sqlite import SqliteLedger

    image = single(builder, "linux/arm64", seed="release-source")
    digest = push(builder, image, registry.host, "team/app", "1")
    kept_tag = quarantine_tag("1", digest)
    push(builder, image, registry.host, "quarantine/team/app", kept_tag)
    references = {"GUARDED": f"{registry.host}/team/app:1", "GUARDED@": f"{registry.host}/team/app@{digest}",
                  "KEPT": f"{registry.host}/quarantine/team/app:{kept_tag}"}
    if source == "KEPT" and destination == "team/app:1":
        client(registry.host).delete_manifest("team/app", digest)  # quarantined: gone from where it was pushed
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy)
    ledger_path = tmp_path / "ledger.db"
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(ledger_path))
    target_repository, _, target_tag = destination.partition(":")
    before = client(registry.host).head_manifest(target_repository, target_tag)
    capsys.readouterr()

    exit_code = main(["release", references[source], "--policy", str(policy_file), *extra])

    printed = capsys.readouterr()
    assert exit_code == code, printed
    ledger = SqliteLedger(ledger_path)
    try:
        released = ledger.is_released(f"{registry.host}/{target_repository}", digest)
    finally:
        ledger.close()
    after = client(registry.host).head_manifest(target_repository, target_tag)
    if refusal is None:
        assert released and after is not None and after.digest == digest
        assert f"→ {registry.host}/{destination} " in printed.out
        return
    assert refusal in printed.err and "--any-source" in printed.err and "Traceback" not in printed.err
    assert references[source] in printed.err
    assert not released
    assert after == before  # nothing written
