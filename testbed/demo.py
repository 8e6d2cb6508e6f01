"""`platform-guard demo` (`scripts/demo`): the whole story on this machine, with nothing configured.

Starts two CNCF distribution registries on free loopback ports — a guarded one whose notifications go to the local
host, and an upstream one holding the right variants — pushes right and wrong images with skopeo (built in code by
`testbed`), waits for every push to be decided, releases the quarantined image on purpose, and prints the
outcomes. A Helm chart pushed last references an image that only the upstream holds (in its values and in its
`artifacthub.io/images` annotation): the chart manager imports it into the guarded registry with the platforms it
needs, and the demo reads it back there. Before the first push it runs the post-deploy smoke check, `python -m
importer doctor`, in a process of its own with the stack's settings in its environment (as the app reads them): every
check must pass. Needs `docker-registry` and `skopeo` (`scripts/setup --demo` installs them, and nothing the demo does
not use).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from importer.app.inspection import evaluate
from importer.app.remediation import release
from importer.core.decide import COMPLIANT
from importer.core.events.model import DELETE_EVENT_REASON
from importer.core.outcome import Outcome
from importer.entry.terminal import display_for, format_outcomes
from testbed.charts import ARTIFACTHUB_IMAGES, ArtifactHubImage, ChartSpec, artifacthub_images, chart_descriptor
from testbed.images import Descriptor, ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry
from testbed.stack import WEBHOOK_TOKEN, GuardedRegistry, is_push_of

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DOCTOR_SECONDS = 120  # the whole smoke check at most (each of its checks: 20 s)

DEMO_POLICY = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["shop/**"]
    require: [linux/amd64, linux/arm64]
    forbid: ["windows/*"]
    on_violation: reimport
    upstream: "{upstream}/vendor/{{path}}"
  - repositories: ["sandbox/**"]
    ignore: true
quarantine:
  mode: move
  repository: "quarantine/{{repository}}"
"""


@dataclass(frozen=True)
class DemoPush:
    """One push of the demo: where it goes, what it is, and what the policy should make of it."""

    repository: str
    tag: str
    story: str
    expected: str
    build: Callable[[ImageBuilder, str], Descriptor]  # (builder, the upstream registry's host)


@dataclass(frozen=True)
class ChartImageExpectation:
    """An image the demo's chart references: where the chart manager must put it, from where, on which platforms."""

    repository: str  # in the guarded registry
    tag: str
    upstream_repository: str  # in the upstream registry; the shop rule's upstream maps it onto `repository`
    platforms: tuple[str, ...]
    expected: str  # the per-image outcome: the image is not in the guarded registry before the chart, so imported


CHART_NAME, CHART_VERSION = "shop", "0.1.0"
CHART_IMAGE = ChartImageExpectation("shop/frontend", "1.0", "vendor/frontend", ("linux/amd64", "linux/arm64"),
                                    "reimported")


def _inconsistent(builder: ImageBuilder) -> Descriptor:
    amd64 = builder.image("linux/amd64", seed="batch", config_platform="linux/arm64")
    return builder.index([amd64, builder.image("linux/arm64", seed="batch")])


def demo_chart(upstream_host: str) -> ChartSpec:
    """The shop chart: its frontend image named as the vendor publishes it, in values (registry, repository, tag, as
    most charts write it) and declared in the `artifacthub.io/images` annotation with the platforms it runs on."""
    image = CHART_IMAGE
    reference = f"{upstream_host}/{image.upstream_repository}:{image.tag}"
    return ChartSpec(
        CHART_NAME, CHART_VERSION, app_version=image.tag,
        annotations={ARTIFACTHUB_IMAGES: artifacthub_images(ArtifactHubImage("frontend", reference, image.platforms))},
        values={"replicaCount": 2,
                "image": {"registry": upstream_host, "repository": image.upstream_repository, "tag": image.tag}},
    )


PUSHES = (
    DemoPush("shop/web", "1.0", "buildx multi-arch index with attestations", "compliant",
             lambda b, _: multi(b, ["linux/amd64", "linux/arm64"], attestations=True, seed="web")),
    DemoPush("shop/api", "2.1", "arm64 image pushed from a laptop", "reimported",
             lambda b, _: single(b, "linux/arm64", seed="laptop")),
    DemoPush("shop/cart", "3.0", "Docker manifest list amd64 + arm64/v8", "compliant",
             lambda b, _: multi(b, ["linux/amd64", "linux/arm64/v8"], docker=True, seed="cart")),
    DemoPush("shop/batch", "5", "index entry says amd64, its config says arm64", "reimported",
             lambda b, _: _inconsistent(b)),
    DemoPush("shop/win", "ltsc2022", "index with a Windows image in a Linux-only repository", "reimported",
             lambda b, _: multi(b, ["linux/amd64", "linux/arm64", "windows/amd64"], seed="win")),
    DemoPush("tools/report", "1", "amd64 image", "compliant", lambda b, _: single(b, "linux/amd64", seed="report")),
    DemoPush("tools/legacy", "1", "arm/v7 image, no upstream to fix it from", "quarantined",
             lambda b, _: single(b, "linux/arm/v7", seed="legacy")),
    DemoPush("sandbox/experiment", "x", "anything goes in the sandbox", "ignored",
             lambda b, _: single(b, "linux/riscv64", seed="sandbox")),
    DemoPush(f"charts/{CHART_NAME}", CHART_VERSION,
             f"Helm chart whose image {CHART_IMAGE.upstream_repository}:{CHART_IMAGE.tag} is only upstream: imported",
             "reimported", lambda b, upstream_host: chart_descriptor(b, demo_chart(upstream_host))),
)

# What the upstream ("vendor") registry offers for the shop images: the right variants.
UPSTREAM = {
    "shop/api:2.1": lambda b: multi(b, ["linux/amd64", "linux/arm64"], attestations=True, seed="api"),
    "shop/batch:5": lambda b: multi(b, ["linux/amd64", "linux/arm64"], seed="batch-fixed"),
    "shop/win:ltsc2022": lambda b: multi(b, ["linux/amd64", "linux/arm64", "windows/amd64"], seed="win"),
    f"{CHART_IMAGE.repository}:{CHART_IMAGE.tag}": lambda b: multi(b, list(CHART_IMAGE.platforms), seed="frontend"),
}


def _story(outcomes: list[Outcome], quarantine_prefix: str = "quarantine/") -> list[Outcome]:
    """The outcomes worth showing: tagged pushes to guarded repositories (not our quarantine copies or deletes)."""
    return [
        o for o in outcomes
        if o.tag and not (o.repository or "").startswith(quarantine_prefix) and o.reason != DELETE_EVENT_REASON
    ]


def run_demo(*, keep: bool = False, out: Callable[[str], None] = print, root: Path | None = None) -> int:
    """Run the demo; 0 when every push ended in the outcome the policy calls for and the chart's image is in the
    guarded registry on the platforms it needs.

    `root`: where the registries' storage (`registry/`, `upstream/`) and the ledger (`ledger.db`) go, left in place
    for the caller; default: a new temporary directory, removed at the end unless `keep`.
    """
    for tool in ("/usr/bin/docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            print(f"demo: {tool} is not installed (run scripts/demo, which installs it)", file=sys.stderr)
            return 2
    owned = root is None
    workdir = Path(tempfile.mkdtemp(prefix="platform-guard-demo-")) if root is None else root
    try:
        with LocalRegistry(workdir / "upstream") as upstream:
            policy_text = DEMO_POLICY.format(upstream=upstream.host)
            with GuardedRegistry(workdir, policy_text) as stack:
                return _run(stack, upstream, workdir, keep or not owned, out, policy_text)
    finally:
        if keep:
            print(f"demo files kept in {workdir}", file=sys.stderr)
        elif owned:
            shutil.rmtree(workdir, ignore_errors=True)


def _doctor(stack: GuardedRegistry, policy_text: str, out: Callable[[str], None]) -> int:
    """`platform-guard doctor` with the stack's settings in the environment, as the app would read them; its
    exit code (0: every check passed)."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PLATFORM_GUARD_")}
    environment.update({
        "PLATFORM_GUARD_REGISTRIES": stack.registry.host,
        "PLATFORM_GUARD_POLICY": policy_text,
        "PLATFORM_GUARD_LEDGER": str(stack.settings.ledger_path),
        "PLATFORM_GUARD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    })
    out("smoke check        platform-guard doctor (the stack's settings in its environment, as the app reads them)")
    try:
        checked = subprocess.run([sys.executable, "-m", "importer", "doctor", "--timeout", "20"], env=environment,
                                 cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=DOCTOR_SECONDS,
                                 check=False)
    except subprocess.TimeoutExpired:
        print(f"demo: doctor did not finish within {DOCTOR_SECONDS} s", file=sys.stderr)
        return 3
    for line in checked.stdout.splitlines():
        out(f"  {line}" if line else "")
    if checked.stderr.strip():
        print(checked.stderr.rstrip(), file=sys.stderr)
    return checked.returncode


def _run(stack: GuardedRegistry, upstream: LocalRegistry, root: Path, keep: bool, out: Callable[[str], None],
         policy_text: str) -> int:
    builder = ImageBuilder(root / "layout")
    for reference, build in UPSTREAM.items():
        repository, tag = reference.split(":")
        push(builder, build(builder), upstream.host, f"vendor/{repository.removeprefix('shop/')}", tag)
    out(f"guarded registry   {stack.registry.url}  → notifications → local host {stack.host.url}")
    out(f"upstream registry  {upstream.url}  (vendor/…: the right variants of the shop images)")
    out("policy             shop/** needs linux/amd64 + linux/arm64 and no windows, fixed by re-import from upstream;")
    out("                   sandbox/** ignored; everything else needs linux/amd64, else quarantined")
    out("")
    doctor = _doctor(stack, policy_text, out)
    out("")
    started = time.monotonic()
    for item in PUSHES:
        push(builder, item.build(builder, upstream.host), stack.registry.host, item.repository, item.tag)
        out(f"pushed    {item.repository + ':' + item.tag:<22} {item.story}")

    def decided(found: list[Outcome]) -> bool:
        return all(any(is_push_of(o, p.repository, p.tag) for o in found) for p in PUSHES)

    outcomes = stack.wait_until(decided, timeout=30)
    first = {(p.repository, p.tag): next(o for o in outcomes if is_push_of(o, p.repository, p.tag))
             for p in PUSHES}
    quarantined = first[("tools/legacy", "1")]
    if quarantined.result == "quarantined" and quarantined.preserved_as:
        repository, _, reference = quarantined.preserved_as.removeprefix(stack.registry.host + "/").partition(":")
        released = release(
            stack.pipeline.registries.client(stack.registry.host), stack.settings.policy, stack.ledger,
            host=stack.registry.host, quarantine_repository=repository, quarantine_reference=reference,
        )
        out(f"released  {released.source} → {released.destination}  (platform-guard release …)")
        stack.wait_until(lambda found: sum((o.repository, o.tag) == ("tools/legacy", "1") for o in _story(found)) >= 2)
    chart_problems = _chart_image(stack, first[(f"charts/{CHART_NAME}", CHART_VERSION)], out)
    # Our own writes (re-imports, the release) cause pushes too: wait for them to settle.
    time.sleep(0.5)
    story = _story(stack.outcomes())
    elapsed = time.monotonic() - started
    out("")
    out(format_outcomes(list(reversed(story)), display=display_for(sys.stdout)))  # fits a terminal, whole in a pipe
    out("")
    out(f"{len(PUSHES)} pushes, {len(story)} decisions (our own re-import and release pushes included) in {elapsed:.1f} s")
    out(f"ledger: {stack.settings.ledger_path if keep else '(removed with the demo; --keep keeps it)'}")
    mismatches = [(p, first[(p.repository, p.tag)].result) for p in PUSHES
                  if first[(p.repository, p.tag)].result != p.expected]
    for item, result in mismatches:
        print(f"demo: {item.repository}:{item.tag} ended {result}, expected {item.expected}", file=sys.stderr)
    for problem in chart_problems:
        print(f"demo: {problem}", file=sys.stderr)
    if doctor != 0:
        print(f"demo: the smoke check (platform-guard doctor) exited {doctor}, expected 0", file=sys.stderr)
    return 1 if mismatches or chart_problems or doctor != 0 else 0


def _chart_image(stack: GuardedRegistry, chart: Outcome, out: Callable[[str], None]) -> list[str]:
    """Wait for the chart image's own outcome and for the push its import caused, then read the image back from the
    guarded registry and judge it with the policy; what is not as expected, as sentences (none: all is well)."""
    image = CHART_IMAGE
    mine = f"{chart.event_id}/image/"  # importer.app.chart_guard.image_event_id, for each image of the chart

    def imported(found: list[Outcome]) -> bool:
        pushes = [o for o in found if is_push_of(o, image.repository, image.tag)]
        return any(o.event_id.startswith(mine) for o in pushes) and any(
            not o.event_id.startswith(mine) for o in pushes)

    try:
        outcomes = stack.wait_until(imported, timeout=15)
    except AssertionError:
        return [(f"the chart's image {image.repository}:{image.tag} has no outcome of its own, or its import no "
                 f"push outcome, within 15 s")]
    own = next(o for o in outcomes if is_push_of(o, image.repository, image.tag) and o.event_id.startswith(mine))
    problems = []
    if own.result != image.expected:
        problems.append(f"the chart's image {image.repository}:{image.tag} ended {own.result}, expected "
                        f"{image.expected}: {own.reason}")
    registry = stack.pipeline.registries.client(stack.registry.host)
    _, verdict = evaluate(stack.settings.policy, registry, image.repository, image.tag, tag=image.tag)
    offered = ", ".join(verdict.platforms) or "nothing runnable"
    out(f"chart     {chart.repository}:{chart.tag} referenced {image.upstream_repository}:{image.tag} (upstream only): "
        f"now {stack.registry.host}/{image.repository}:{image.tag}, {verdict.verdict}, offers {offered}")
    missing = [platform for platform in image.platforms if platform not in verdict.platforms]
    if verdict.verdict != COMPLIANT or missing:
        problems.append(f"{image.repository}:{image.tag} in the guarded registry is {verdict.verdict} and offers "
                        f"{offered}; the chart needs {', '.join(image.platforms)}")
    return problems
