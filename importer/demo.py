"""`python -m importer demo`: the whole path on this machine, with nothing configured.

Starts a CNCF distribution registry on a free loopback port whose notifications go to the local host,
pushes right and wrong images with skopeo (built in code by `importer.testbed`), waits for every push
to be decided, and prints the outcomes. Needs `docker-registry` and `skopeo` (scripts/setup installs them).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from importer.cli import format_outcomes
from importer.outcome import Outcome
from importer.testbed.images import Descriptor, ImageBuilder, multi, single
from importer.testbed.push import push
from importer.testbed.stack import GuardedRegistry

DEMO_POLICY = """\
version: 1
defaults:
  require: [linux/amd64]
  match: compatible
  on_violation: quarantine
rules:
  - repositories: ["shop/**"]
    require: [linux/amd64, linux/arm64]
    forbid: ["windows/*"]
    on_violation: alert
  - repositories: ["sandbox/**"]
    ignore: true
quarantine:
  mode: move
  repository: "quarantine/{repository}"
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
    DemoPush("shop/api", "2.1", "arm64 image pushed from a laptop", "alerted",
             lambda b: single(b, "linux/arm64", seed="api")),
    DemoPush("shop/cart", "3.0", "Docker manifest list amd64 + arm64/v8", "compliant",
             lambda b: multi(b, ["linux/amd64", "linux/arm64/v8"], docker=True, seed="cart")),
    DemoPush("shop/batch", "5", "index entry says amd64, config says arm64", "alerted", _inconsistent),
    DemoPush("shop/win", "ltsc2022", "Windows image in a Linux-only repository", "alerted",
             lambda b: multi(b, ["linux/amd64", "linux/arm64", "windows/amd64"], seed="win")),
    DemoPush("tools/report", "1", "amd64 image, default rule", "compliant",
             lambda b: single(b, "linux/amd64", seed="report")),
    DemoPush("tools/legacy", "1", "arm/v7 image, default rule needs amd64", "alerted",
             lambda b: single(b, "linux/arm/v7", seed="legacy")),
    DemoPush("sandbox/experiment", "x", "anything goes in the sandbox", "ignored",
             lambda b: single(b, "linux/riscv64", seed="sandbox")),
    DemoPush("charts/shop", "0.1.0", "Helm chart (an artifact, not a runnable image)", "ignored",
             lambda b: b.helm_chart("shop", "0.1.0")),
)


def run_demo(*, keep: bool = False, out: Callable[[str], None] = print) -> int:
    """Run the demo; 0 when every push ended in the outcome the policy calls for."""
    for tool in ("/usr/bin/docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            print(f"demo: {tool} is not installed (run scripts/demo, which installs it)", file=sys.stderr)
            return 2
    root = Path(tempfile.mkdtemp(prefix="platform-guard-demo-"))
    try:
        with GuardedRegistry(root, DEMO_POLICY) as stack:
            out(f"registry  {stack.registry.url}  → notifications → local host {stack.host.url}")
            out("policy    shop/** needs linux/amd64 + linux/arm64, no windows (alert); sandbox/** ignored;")
            out("          everything else needs linux/amd64")
            out("")
            builder = ImageBuilder(root / "layout")
            started = time.monotonic()
            for item in PUSHES:
                push(builder, item.build(builder), stack.registry.host, item.repository, item.tag)
                out(f"pushed    {item.repository + ':' + item.tag:<22} {item.story}")
            outcomes = stack.wait_until(
                lambda found: all(any(o.repository == p.repository and o.tag == p.tag for o in found) for p in PUSHES)
            )
            elapsed = time.monotonic() - started
            tagged: list[Outcome] = [o for o in outcomes if o.tag]
            children = len(outcomes) - len(tagged)
            out("")
            out(format_outcomes(list(reversed(tagged))))
            out("")
            out(
                f"{len(tagged)} tagged pushes decided and {children} untagged child pushes recorded as ignored "
                f"in {elapsed:.1f} s; ledger {stack.settings.ledger_path if keep else '(removed)'}"
            )
            out("see every field of a record with: python -m importer outcomes --json (PLATFORM_GUARD_LEDGER=…)")
            mismatches = [
                (p, o.result)
                for p in PUSHES
                for o in tagged
                if o.repository == p.repository and o.tag == p.tag and o.result != p.expected.replace("alerted", "alerted")
            ]
            for item, result in mismatches:
                print(f"demo: {item.repository}:{item.tag} ended {result}, expected {item.expected}", file=sys.stderr)
            return 1 if mismatches else 0
    finally:
        if keep:
            print(f"demo files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
