"""`python -m importer demo`: the whole story on this machine, with nothing configured.

Starts two CNCF distribution registries on free loopback ports — a guarded one whose notifications go to the local
host, and an upstream one holding the right variants — pushes right and wrong images with skopeo (built in code by
`testbed`), waits for every push to be decided, releases the quarantined image on purpose, and prints the
outcomes. Before the first push it runs the post-deploy smoke check, `python -m importer doctor`, in a process of its
own with the stack's settings in its environment (as the app reads them): every check must pass. Needs
`docker-registry` and `skopeo` (scripts/setup installs them).
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

from importer.app.remediation import release
from importer.core.events.model import DELETE_EVENT_REASON
from importer.core.outcome import Outcome
from importer.entry.terminal import format_outcomes
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
    build: Callable[[ImageBuilder], Descriptor]


def _inconsistent(builder: ImageBuilder) -> Descriptor:
    amd64 = builder.image("linux/amd64", seed="batch", config_platform="linux/arm64")
    return builder.index([amd64, builder.image("linux/arm64", seed="batch")])


PUSHES = (
    DemoPush("shop/web", "1.0", "buildx multi-arch index with attestations", "compliant",
             lambda b: multi(b, ["linux/amd64", "linux/arm64"], attestations=True, seed="web")),
    DemoPush("shop/api", "2.1", "arm64 image pushed from a laptop", "reimported",
             lambda b: single(b, "linux/arm64", seed="laptop")),
    DemoPush("shop/cart", "3.0", "Docker manifest list amd64 + arm64/v8", "compliant",
             lambda b: multi(b, ["linux/amd64", "linux/arm64/v8"], docker=True, seed="cart")),
    DemoPush("shop/batch", "5", "index entry says amd64, its config says arm64", "reimported", _inconsistent),
    DemoPush("shop/win", "ltsc2022", "index with a Windows image in a Linux-only repository", "reimported",
             lambda b: multi(b, ["linux/amd64", "linux/arm64", "windows/amd64"], seed="win")),
    DemoPush("tools/report", "1", "amd64 image", "compliant", lambda b: single(b, "linux/amd64", seed="report")),
    DemoPush("tools/legacy", "1", "arm/v7 image, no upstream to fix it from", "quarantined",
             lambda b: single(b, "linux/arm/v7", seed="legacy")),
    DemoPush("sandbox/experiment", "x", "anything goes in the sandbox", "ignored",
             lambda b: single(b, "linux/riscv64", seed="sandbox")),
    DemoPush("charts/shop", "0.1.0", "Helm chart: the images it references are checked (none in this one)",
             "compliant", lambda b: b.helm_chart("shop", "0.1.0")),
)

# What the upstream ("vendor") registry offers for the shop images: the right variants.
UPSTREAM = {
    "shop/api:2.1": lambda b: multi(b, ["linux/amd64", "linux/arm64"], attestations=True, seed="api"),
    "shop/batch:5": lambda b: multi(b, ["linux/amd64", "linux/arm64"], seed="batch-fixed"),
    "shop/win:ltsc2022": lambda b: multi(b, ["linux/amd64", "linux/arm64", "windows/amd64"], seed="win"),
}


def _story(outcomes: list[Outcome], quarantine_prefix: str = "quarantine/") -> list[Outcome]:
    """The outcomes worth showing: tagged pushes to guarded repositories (not our quarantine copies or deletes)."""
    return [
        o for o in outcomes
        if o.tag and not (o.repository or "").startswith(quarantine_prefix) and o.reason != DELETE_EVENT_REASON
    ]


def run_demo(*, keep: bool = False, out: Callable[[str], None] = print) -> int:
    """Run the demo; 0 when every push ended in the outcome the policy calls for."""
    for tool in ("/usr/bin/docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            print(f"demo: {tool} is not installed (run scripts/demo, which installs it)", file=sys.stderr)
            return 2
    root = Path(tempfile.mkdtemp(prefix="platform-guard-demo-"))
    try:
        with LocalRegistry(root / "upstream") as upstream:
            policy_text = DEMO_POLICY.format(upstream=upstream.host)
            with GuardedRegistry(root, policy_text) as stack:
                return _run(stack, upstream, root, keep, out, policy_text)
    finally:
        if keep:
            print(f"demo files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _doctor(stack: GuardedRegistry, policy_text: str, out: Callable[[str], None]) -> int:
    """`python -m importer doctor` with the stack's settings in the environment, as the app would read them; its
    exit code (0: every check passed)."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PLATFORM_GUARD_")}
    environment.update({
        "PLATFORM_GUARD_REGISTRIES": stack.registry.host,
        "PLATFORM_GUARD_POLICY": policy_text,
        "PLATFORM_GUARD_LEDGER": str(stack.settings.ledger_path),
        "PLATFORM_GUARD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    })
    out("smoke check        python -m importer doctor (the stack's settings in its environment, as the app reads them)")
    try:
        checked = subprocess.run([sys.executable, "-m", "importer", "doctor", "--timeout", "20"], env=environment,
                                 cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=DOCTOR_SECONDS)
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
        push(builder, item.build(builder), stack.registry.host, item.repository, item.tag)
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
        out(f"released  {released.source} → {released.destination}  (python -m importer release …)")
        stack.wait_until(lambda found: sum((o.repository, o.tag) == ("tools/legacy", "1") for o in _story(found)) >= 2)
    # Our own writes (re-imports, the release) cause pushes too: wait for them to settle.
    time.sleep(0.5)
    story = _story(stack.outcomes())
    elapsed = time.monotonic() - started
    out("")
    out(format_outcomes(list(reversed(story))))
    out("")
    out(f"{len(PUSHES)} pushes, {len(story)} decisions (our own re-import and release pushes included) in {elapsed:.1f} s")
    out(f"ledger: {stack.settings.ledger_path if keep else '(removed with the demo; --keep keeps it)'}")
    mismatches = [(p, first[(p.repository, p.tag)].result) for p in PUSHES
                  if first[(p.repository, p.tag)].result != p.expected]
    for item, result in mismatches:
        print(f"demo: {item.repository}:{item.tag} ended {result}, expected {item.expected}", file=sys.stderr)
    if doctor != 0:
        print(f"demo: the smoke check (python -m importer doctor) exited {doctor}, expected 0", file=sys.stderr)
    return 1 if mismatches or doctor != 0 else 0
