"""The audit benchmark: a dry-run sweep (`python -m importer audit`) of 1,000 tags of multi-arch indexes on a local
registry: wall time, tags per second and registry requests per tag.

    .venv/bin/python -m bench.audit                                  # both scenarios, 5 runs each, a table
    .venv/bin/python -m bench.audit --scenario retagged --runs 3 --json

Setup, once per scenario: a real distribution registry (`testbed.registry.LocalRegistry`) gets
`--repositories` repositories (default 10) holding `--tags` tags in all (default 1,000), spread round-robin over the
repository's builds. A build is a buildx-like OCI index: an amd64 and an arm64 image, each with its BuildKit
attestation (4 children; built by `testbed.images`). One build in five is amd64-only: a violation under the
benchmark's policy, which requires linux/amd64 and linux/arm64, so both image children decide and are checked
against their configs. Blobs and child manifests are pushed once per repository and every tag is a manifest PUT, with
our own `OciRegistry` from a few threads; then everything is read once so the registry's page cache is warm.
- retagged (the target): 5 builds per repository, each under many tags (releases, promotions, `latest`): a tag
  costs its manifest GET; the children and configs of a build are read once per repository (cached by digest).
- new-builds (for contrast, no target): every tag its own build, as right after a CI pushes each commit: a tag
  costs its index, both deciding children and both configs, 5 requests.

Each run: a fresh `Sweep` in dry-run mode (nothing recorded) with a new registry client (cold digest cache),
`--parallel` workers (default 8). Wall time is `SweepReport.duration_seconds`: listing the catalog and every tag list
plus reading and judging every tag. Requests are counted by the client (`OciRegistry.requests_made`: every HTTP
request, listings included). Each run's totals must match what was pushed, or the benchmark fails (BenchmarkError).
Figures are the median of the runs. Targets (retagged): at most 1.3 requests per tag, at least 200 tags/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import machine
from importer.adapters.registry.oci import OciRegistry
from importer.app.settings import Settings
from importer.app.sweep import Sweep, SweepOptions
from importer.core.policy import parse_policy
from importer.entry.composition import registry_directory_for
from testbed.images import Descriptor, ImageBuilder
from testbed.registry import LocalRegistry

POLICY = parse_policy("version: 1\ndefaults:\n  require: [linux/amd64, linux/arm64]\n", source="bench/audit.py")
TARGET_REQUESTS_PER_TAG = 1.3
TARGET_TAGS_PER_SECOND = 200.0
PUSH_THREADS = 4
SCENARIOS = ("retagged", "new-builds")


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it claims: a push or a sweep's totals went wrong."""


@dataclass(frozen=True, slots=True)
class Build:
    """One pushed index and everything under it, in the order a push needs them."""

    index: Descriptor
    children: tuple[Descriptor, ...]
    blobs: tuple[str, ...]
    compliant: bool


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One sweep."""

    seconds: float
    tags_per_second: float
    requests: int
    requests_per_tag: float


def make_build(builder: ImageBuilder, label: str, *, compliant: bool) -> Build:
    platforms = ("linux/amd64", "linux/arm64") if compliant else ("linux/amd64",)
    images = [builder.image(name, seed=label) for name in platforms]
    attestations = [builder.attestation(image) for image in images]
    children = (*images, *attestations)
    index = builder.index(children)
    blobs: list[str] = []
    for child in children:
        document = builder.document(child)
        blobs += [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]
    return Build(index, children, tuple(dict.fromkeys(blobs)), compliant)


def push_repository(
    client: OciRegistry, builder: ImageBuilder, repository: str, tags: Sequence[tuple[str, Build]]
) -> None:
    """Blobs and children of each build once, then one manifest PUT per tag."""
    seen: set[str] = set()
    for _, build in tags:
        if build.index.digest in seen:
            continue
        seen.add(build.index.digest)
        for digest in build.blobs:
            content = builder.blob(digest)
            client.upload_blob(repository, digest, [content], size=len(content))
        for child in build.children:
            client.put_manifest(repository, child.digest, builder.blob(child.digest), child.media_type)
    for tag, build in tags:
        client.put_manifest(repository, tag, builder.blob(build.index.digest), build.index.media_type)


def seed(registry_host: str, root: Path, scenario: str, tags: int, repositories: int) -> dict[str, int]:
    """Push the scenario; returns the totals a sweep must find."""
    builder = ImageBuilder(root / "layout")
    per_repository = tags // repositories
    plan: dict[str, list[tuple[str, Build]]] = {}
    for number in range(repositories):
        repository = f"bench/app-{number:02d}"
        builds: list[Build] = []
        build_count = 5 if scenario == "retagged" else per_repository
        for index in range(build_count):
            builds.append(make_build(builder, f"{scenario} {repository} build {index}", compliant=index % 5 != 4))
        plan[repository] = [(f"v{tag:04d}", builds[tag % build_count]) for tag in range(per_repository)]
    client = OciRegistry(registry_host)
    try:
        with ThreadPoolExecutor(max_workers=PUSH_THREADS) as pool:
            for future in [pool.submit(push_repository, client, builder, name, items) for name, items in plan.items()]:
                future.result()
        for name, items in plan.items():  # read everything once: the registry and the page cache are warm
            for tag, _ in items:
                client.get_manifest(name, tag)
    finally:
        client.close()
    compliant = sum(1 for items in plan.values() for _, build in items if build.compliant)
    total = sum(len(items) for items in plan.values())
    return {"compliant": compliant, "violation": total - compliant, "ignored": 0, "failed": 0, "gone": 0}


def one_run(registry_host: str, expected: dict[str, int], parallel: int) -> RunFigures:
    directory = registry_directory_for(Settings(registries=(registry_host,), policy=POLICY))
    sweep = Sweep(registry_host, policy=POLICY, registries=directory, options=SweepOptions(parallel=parallel))
    try:
        report = sweep.run()
    finally:
        sweep.registry.close()
    if report.totals() != expected:
        raise BenchmarkError(f"sweep totals {report.totals()} differ from what was pushed {expected}")
    tags = len(report.items)
    requests = report.registry_requests or 0
    return RunFigures(report.duration_seconds, tags / report.duration_seconds, requests, requests / tags)


def median_of(runs: Sequence[RunFigures]) -> RunFigures:
    return RunFigures(*(statistics.median(getattr(run, name) for run in runs) for name in RunFigures.__slots__))



def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        root = Path(folder)
        with LocalRegistry(root / "registry") as registry:
            started = time.perf_counter()
            expected = seed(registry.host, root, scenario, args.tags, args.repositories)
            seeded_in = time.perf_counter() - started
            print(f"{scenario}: seeded {sum(expected.values())} tags in {seeded_in:.1f} s", file=sys.stderr)
            runs = []
            for number in range(args.runs):
                figures = one_run(registry.host, expected, args.parallel)
                print(f"  run {number + 1}: {figures.seconds:.3f} s, {figures.tags_per_second:.0f} tags/s, "
                      f"{figures.requests_per_tag:.3f} requests/tag", file=sys.stderr)
                runs.append(figures)
    median = median_of(runs)
    report: dict[str, object] = {"scenario": scenario, "totals": expected, "per_run": [asdict(run) for run in runs],
                                 "median": asdict(median)}
    if scenario == "retagged":
        report["targets"] = {
            "requests_per_tag": {"target": TARGET_REQUESTS_PER_TAG,
                                 "met": median.requests_per_tag <= TARGET_REQUESTS_PER_TAG},
            "tags_per_second": {"target": TARGET_TAGS_PER_SECOND,
                                "met": median.tags_per_second >= TARGET_TAGS_PER_SECOND},
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=1000, help="tags in all (default 1000)")
    parser.add_argument("--repositories", type=int, default=10, help="repositories (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="sweeps per scenario; figures are medians (default 5)")
    parser.add_argument("--parallel", type=int, default=8, help="sweep workers (default 8)")
    parser.add_argument("--scenario", choices=(*SCENARIOS, "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    scenarios = SCENARIOS if args.scenario == "both" else (args.scenario,)
    result = {"machine": machine(), "parallel": args.parallel, "scenarios": [run_scenario(s, args) for s in scenarios]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {result['machine']}")
    print(f"{'scenario':<12} {'tags':>5} {'wall s':>8} {'tags/s':>8} {'req/tag':>8}  targets")
    for entry in result["scenarios"]:  # type: ignore[union-attr]
        median = entry["median"]
        targets = entry.get("targets", {})
        met = ", ".join(f"{name} {'met' if value['met'] else 'MISSED'}" for name, value in targets.items()) or "—"
        print(f"{entry['scenario']:<12} {sum(entry['totals'].values()):>5} {median['seconds']:>8.3f} "
              f"{median['tags_per_second']:>8.0f} {median['requests_per_tag']:>8.3f}  {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
