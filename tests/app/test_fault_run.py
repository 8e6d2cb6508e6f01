"""50 remediations through a proxy that fails 20% of every request to the registries: nothing is lost.

The guarded and the upstream registry each sit behind a FaultProxy (503, 429 with Retry-After, connection resets,
slow answers, seeded). Events are delivered the way Event Grid does: a failed delivery is delivered again. At the
end every tag is either untouched or points at a complete, verified compliant image (or, for quarantines, is gone
with its image kept), every offending image is preserved, and every event has exactly one final outcome.
The proxies' figures are printed in the test session's summary.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import OciRegistry
from importer.app.inspection import evaluate
from importer.app.pipeline import Pipeline, TransientFailure
from importer.app.remediation import quarantine_tag
from importer.app.settings import Settings
from importer.core.events import PushEvent
from importer.core.media_types import OCI_MANIFEST
from importer.core.policy import parse_policy
from importer.entry.composition import pipeline_for
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry
from tests.figures import report

REMEDIATIONS = 50
FAULT_RATE = 0.2
MAX_DELIVERIES = 25  # Event Grid's default is 30 attempts


def _policy(upstream_host: str) -> str:
    return f"""
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["fix/**"]
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
    upstream: "{upstream_host}/mirror/{{repository}}"
"""


def _event(host: str, repository: str, digest: str) -> PushEvent:
    return PushEvent(event_id=f"push-{repository}", schema="distribution", action="push", origin=host,
                     repository=repository, tag="1", digest=digest, media_type=OCI_MANIFEST, size=1, artifact="image",
                     actor="ci", user_agent="test", occurred_at=None)


def _deliver(pipeline: Pipeline, event: PushEvent) -> int:
    """Deliver until the pipeline accepts the event (as Event Grid retries); returns the number of deliveries."""
    for attempt in range(1, MAX_DELIVERIES + 1):
        try:
            pipeline.handle_all([event])
            return attempt
        except TransientFailure:
            time.sleep(0.05)
    return MAX_DELIVERIES


def _blobs_present(registry: OciRegistry, repository: str, reference: str) -> bool:
    import json

    fetched = registry.get_manifest(repository, reference)
    document = json.loads(fetched.raw)
    children = [child["digest"] for child in document.get("manifests", [])]
    if children:
        return all(_blobs_present(registry, repository, child) for child in children)
    blobs = [document["config"]["digest"], *(layer["digest"] for layer in document.get("layers", []))]
    return all(registry.head_blob(repository, digest) is not None for digest in blobs)


def test_fifty_remediations_with_twenty_percent_faults(tmp_path: Path) -> None:
    """With 20% faults on every registry request, every tag ends safe, every offender kept, one final outcome each."""
    builder = ImageBuilder(tmp_path / "layout")
    with LocalRegistry(tmp_path / "guarded") as guarded, LocalRegistry(tmp_path / "upstream") as upstream:
        good = multi(builder, ["linux/amd64", "linux/arm64"], attestations=True)
        repositories = [f"fix/app-{n}" for n in range(REMEDIATIONS // 2)] + [
            f"hold/app-{n}" for n in range(REMEDIATIONS - REMEDIATIONS // 2)
        ]
        bad: dict[str, str] = {}
        for n, repository in enumerate(repositories):
            bad[repository] = push(builder, single(builder, "linux/arm64", seed=f"bad-{n}"), guarded.host, repository, "1")
            if repository.startswith("fix/"):
                push(builder, good, upstream.host, f"mirror/{repository}", "1")

        proxy_options = {"rate": FAULT_RATE, "retry_after": 1, "slow_seconds": 0.1}
        with FaultProxy(guarded.host, seed="guarded", **proxy_options) as guarded_proxy, \
                FaultProxy(upstream.host, seed="upstream", **proxy_options) as upstream_proxy:
            settings = Settings(
                registries=(guarded_proxy.host,),
                policy=parse_policy(_policy(upstream_proxy.host), source="fault-run.yaml"),
                ledger_path=tmp_path / "ledger.db",
            )
            ledger = SqliteLedger(settings.ledger_path)
            pipeline = pipeline_for(settings, ledger=ledger)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                deliveries = list(pool.map(lambda r: _deliver(pipeline, _event(guarded_proxy.host, r, bad[r])),
                                           repositories))
            elapsed = time.monotonic() - started
            stats = (guarded_proxy.stats, upstream_proxy.stats)

        direct = OciRegistry(guarded.host)
        finals: dict[str, str] = {}
        for repository in repositories:
            records = ledger.outcomes(event_id=f"push-{repository}", limit=100)  # newest first
            final = records[0]
            assert final.final, final  # the newest record ends the event: no attempt left hanging
            assert sum(1 for r in records if r.final) == 1, [r.result for r in records]
            assert all(r.result == "retrying" and not r.alerts for r in records[1:]), [r.result for r in records]
            finals[repository] = final.result

            current = direct.head_manifest(repository, "1")
            kept = direct.head_manifest(f"quarantine/{repository}", quarantine_tag("1", bad[repository]))
            if current is not None and current.digest == bad[repository]:
                assert final.result == "failed", f"{repository}: untouched but {final.result}"
                continue
            assert kept is not None and kept.digest == bad[repository], f"{repository}: offender not preserved"
            if current is None:
                assert repository.startswith("hold/") and final.result == "quarantined"
            else:
                _, verdict = evaluate(settings.policy, direct, repository, "1")
                assert verdict.verdict == "compliant", f"{repository}: {verdict.reason}"
                assert _blobs_present(direct, repository, "1"), f"{repository}: incomplete image"
        ledger.close()

    results = {result: list(finals.values()).count(result) for result in sorted(set(finals.values()))}
    for name, stat in zip(("guarded", "upstream"), stats):
        report("fault injection", f"{name} proxy: {stat.requests} requests, {stat.injected_total} faults injected "
                                  f"({', '.join(f'{k} {v}' for k, v in sorted(stat.injected.items()))}), "
                                  f"{stat.forwarded} forwarded")
    report("fault injection", f"{REMEDIATIONS} events in {elapsed:.1f} s, {sum(deliveries)} deliveries "
                              f"(max {max(deliveries)} for one event); final results {results}")
    assert stats[0].injected_total > 0 and stats[1].injected_total > 0
    # Every event ends in its correct final outcome after redeliveries: none lost, none stuck, none failed.
    assert results == {"quarantined": REMEDIATIONS - REMEDIATIONS // 2, "reimported": REMEDIATIONS // 2}, results
