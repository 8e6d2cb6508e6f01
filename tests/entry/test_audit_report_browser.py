"""The audit report as on-call reads it (importer/entry/audit_report.py), from a real sweep of a real registry, and the
HTML page as headless Chromium lays it out at 1400 and 800 px.

The registry (distribution, testbed/registry.py) holds what a new user's registry held: 25 tags of one mirror sharing
one reason (missing linux/arm64, re-imported from docker.io/library/nginx), a few other reasons (quarantine, alert),
a repository with a very long name, tags with long names, a repository whose tags cannot be listed and a tag that
cannot be read. The last two are the registry's own failures: its storage is broken on disk under those names, so it
answers HTTP 500 with an OCI error document. The first image of each repository is pushed with skopeo, the other
tags are manifest PUTs of the same bytes.

The browser test copies the page and adds, to the copy only, a script that opens every <details>, measures the page
and every table, cell and code block against the window, and writes the result into the DOM; `chromium --dump-dom`
prints it. The product's page has no script. A screenshot per width is kept under the test's tmp_path, and copied
to $PLATFORM_GUARD_TEST_ARTIFACTS/<test> when that names a directory. Chromium is the Debian package (scripts/setup
installs it); where it is missing the browser tests are skipped, or fail with PLATFORM_GUARD_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.app.settings import Settings
from importer.app.sweep import Sweep, SweepOptions, SweepReport
from importer.core.policy import parse_policy
from importer.entry.audit_report import render_html, render_markdown
from importer.entry.composition import registry_directory_for
from testbed.images import Descriptor, ImageBuilder, multi, single
from testbed.push import push, push_raw_manifest
from testbed.registry import LocalRegistry
from testbed.tools import REQUIRE_VARIABLE, tools_required

pytestmark = pytest.mark.timeout(180)

ARTIFACTS_VARIABLE = "PLATFORM_GUARD_TEST_ARTIFACTS"
POLICY_TEXT = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["mirror/**"]
    upstream: "docker.io/library/{path}"
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
  - repositories: ["alerts/**"]
    on_violation: alert
quarantine:
  mode: move
  repository: "quarantine/{repository}"
"""
MIRROR = "mirror/nginx"
LONG_REPOSITORY = ("platform-engineering/observability/collectors/"
                   "opentelemetry-collector-contrib-distribution-for-the-arm64-node-pools-of-every-cluster")
ALERTS = "alerts/billing-service-reconciliation-worker"
UNLISTABLE = "team/unlistable"
UNREADABLE = "team/flaky"
MIRROR_TAGS = [f"1.27.{number}" for number in range(22)] + ["stable", "mainline",
                                                             "1.27-bookworm-perl-build.20241128.4711-" + "0123456789abcdef" * 4]
LONG_TAG = "2024.11.28-release-candidate.7-sha." + "fedcba9876543210" * 5


@dataclass(frozen=True, slots=True)
class Swept:
    """The seeded registry's host and its report, rendered both ways."""

    host: str
    report: SweepReport
    markdown: str
    page: str


def _tag_all(builder: ImageBuilder, image: Descriptor, host: str, repository: str, tags: list[str]) -> None:
    """Push `image` under the first tag (skopeo where it is faithful), then PUT the same manifest under the others."""
    push(builder, image, host, repository, tags[0])
    for tag in tags[1:]:
        push_raw_manifest(host, repository, tag, builder.blob(image.digest), image.media_type)


def _break_storage(registry: LocalRegistry, repository: str, *, tag: str | None = None) -> None:
    """Break the registry's storage under `repository` (distribution's filesystem layout): its tag directory becomes a
    file (listing its tags fails), or `tag`'s link holds garbage (reading the tag fails). Both answer HTTP 500."""
    manifests = registry.root / "data" / "docker" / "registry" / "v2" / "repositories" / repository / "_manifests"
    if tag is None:
        shutil.rmtree(manifests / "tags")
        (manifests / "tags").write_text("not a directory")
    else:
        (manifests / "tags" / tag / "current" / "link").write_text("garbage")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """A dry-run sweep of the seeded registry (see the module docstring), with `--policy policy.yaml` in commands."""
    root = tmp_path_factory.mktemp("audit-report")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as registry:
        host = registry.host
        _tag_all(builder, single(builder, "linux/amd64", seed="nginx amd64 only"), host, MIRROR, MIRROR_TAGS)
        _tag_all(builder, single(builder, "linux/arm64", seed="nginx arm64 only"), host, MIRROR, ["1.26.0", "1.26.1"])
        _tag_all(builder, multi(builder, ["linux/amd64", "linux/arm64"], seed="nginx"), host, MIRROR, ["1.28.0"])
        _tag_all(builder, single(builder, "linux/arm64", seed="collector"), host, LONG_REPOSITORY,
                 [LONG_TAG, "0.114.0", "0.113.0"])
        _tag_all(builder, single(builder, "linux/amd64", seed="collector"), host, LONG_REPOSITORY, ["0.112.0", "0.111.0"])
        _tag_all(builder, single(builder, "linux/arm64", seed="billing"), host, ALERTS, ["2.4.1", "2.4.0"])
        _tag_all(builder, single(builder, "linux/amd64", seed="unlistable"), host, UNLISTABLE, ["1.0"])
        _tag_all(builder, single(builder, "linux/amd64", seed="flaky"), host, UNREADABLE, ["1.0", "1.1"])
        _break_storage(registry, UNLISTABLE)
        _break_storage(registry, UNREADABLE, tag="1.1")
        policy = parse_policy(POLICY_TEXT)
        directory = registry_directory_for(Settings(registries=(host,), policy=policy))
        report = Sweep(host, policy=policy, registries=directory, options=SweepOptions(policy_hint="policy.yaml")).run()
        yield Swept(host, report, render_markdown(report), render_html(report))


def test_the_seeded_sweep_is_what_the_report_is_about(swept: Swept) -> None:
    """The sweep found what was seeded: 32 violations (27 to re-import, 3 to quarantine, 2 alerts), 4 compliant
    tags, one tag that could not be read and one repository whose tags could not be listed."""
    assert swept.report.totals() == {"compliant": 4, "violation": 32, "ignored": 0, "failed": 1, "gone": 0}
    assert [name for name, _ in swept.report.repository_errors] == [UNLISTABLE]
    assert [(item.repository, item.tag) for item in swept.report.failures] == [(UNREADABLE, "1.1")]


@pytest.mark.parametrize("form", [pytest.param("markdown", id="markdown"), pytest.param("html", id="html")])
def test_failures_come_first_with_their_error_as_text_and_a_command(swept: Swept, form: str) -> None:
    """Totals, then failures (the repository and the tag, the registry's error as `CODE: message`, never its JSON
    document), then violations, then the tags per repository."""
    text = swept.markdown if form == "markdown" else swept.page
    positions = [text.index(heading) for heading in ("Totals", "Failures (2)", "Violations (32 tags in 3 repositories)",
                                                     "By repository")]
    assert positions == sorted(positions), positions
    failures = text[positions[1]:positions[2]]
    assert f"{swept.host}/{UNLISTABLE}" in failures and f"{swept.host}/{UNREADABLE}:1.1" in failures
    assert failures.count("HTTP 500 UNKNOWN: unknown error") == 2, failures
    assert '"errors"' not in text and "&quot;errors&quot;" not in text and "DriverName" not in text
    assert f"platform-guard audit {swept.host}/{UNLISTABLE} --policy policy.yaml" in re.sub(r"<[^>]+>", "", failures)
    assert f"platform-guard check {swept.host}/{UNREADABLE}:1.1 --policy policy.yaml" in re.sub(r"<[^>]+>", "",
                                                                                                   failures)


@pytest.mark.parametrize("form", [pytest.param("markdown", id="markdown"), pytest.param("html", id="html")])
def test_violations_are_grouped_by_reason_and_remedy_with_counts(swept: Swept, form: str) -> None:
    """The 25 tags that share a reason are one group, counted, with its remedy; every tag keeps its own command."""
    text = swept.markdown if form == "markdown" else swept.page
    plain = html.unescape(re.sub(r"<[^>]+>", "", text)).replace("**", "")
    reimport = re.findall(r"25 tags: ([^\n]+?) → re-import from docker\.io/library/nginx", plain)
    assert reimport and set(reimport) == {reimport[0]} and "linux/arm64" in reimport[0], reimport
    assert re.search(r"2 tags: [^\n]+? → re-import from docker\.io/library/nginx", plain)
    assert re.search(rf"3 tags: [^\n]+? → quarantine: move to quarantine/{re.escape(LONG_REPOSITORY)}", plain)
    assert re.search(r"2 tags: [^\n]+? → alert only", plain)
    for tag in MIRROR_TAGS:
        assert f"platform-guard audit {swept.host}/{MIRROR}:{tag} --policy policy.yaml --remediate" in plain, tag


def test_html_collapses_each_repository_under_a_summary_of_its_groups(swept: Swept) -> None:
    """One <details> per repository with violations, closed, its <summary> naming the repository, the count and the
    groups; no script anywhere."""
    blocks = re.findall(r"<details( open)?><summary>(.*?)</summary>", swept.page, re.S)
    assert len(blocks) == 3 and all(opened == "" for opened, _ in blocks)
    summaries = [html.unescape(re.sub(r"<[^>]+>", " ", summary)) for _, summary in blocks]
    assert [summary.split()[0] for summary in summaries] == sorted([ALERTS, MIRROR, LONG_REPOSITORY])
    assert "27 tags" in summaries[1] and "25 tags:" in summaries[1] and "2 tags:" in summaries[1]
    assert "<script" not in swept.page.lower()


RAW_STRUCTURES = {
    "dict-repr": "{'",
    "list-of-tuples-repr": "[('",
    "tuple-repr": "('",
    "none-repr": "None",
    "json-object": '{"',
    "json-object-escaped": "{&quot;",
}


@pytest.mark.parametrize("form", [pytest.param("markdown", id="markdown"), pytest.param("html", id="html")])
@pytest.mark.parametrize("pattern", RAW_STRUCTURES.values(), ids=RAW_STRUCTURES.keys())
def test_no_raw_python_or_json_structure_appears(swept: Swept, form: str, pattern: str) -> None:
    """Whatever the registry answered, the report shows text: no Python repr, no None, no JSON document."""
    text = swept.markdown if form == "markdown" else swept.page
    assert pattern not in text, text[max(0, text.find(pattern) - 200):text.find(pattern) + 200]


SELF_CONTAINED = {
    "no-script": r"<script",
    "no-link-element": r"<link",
    "no-src-attribute": r"\ssrc=",
    "no-href-attribute": r"\shref=",
    "no-css-import-or-url": r"@import|url\(",
    "no-remote-url": r"https?://",
}


@pytest.mark.parametrize("pattern", SELF_CONTAINED.values(), ids=SELF_CONTAINED.keys())
def test_html_needs_nothing_from_outside(swept: Swept, pattern: str) -> None:
    """The page renders offline and alone: inline CSS, nothing fetched."""
    assert re.search(pattern, swept.page, re.I) is None


# -- headless Chromium ------------------------------------------------------------------------------------------------

CHROMIUM = "chromium"
# Test-only: appended to a copy of the page. Opens every <details>, then measures; writes the result into the DOM.
MEASURE_SCRIPT = """<script>
(function () {
  for (const details of document.querySelectorAll("details")) details.open = true;
  const root = document.documentElement;
  const width = root.clientWidth;
  const problems = [];
  const shown = (element) => element.tagName + " " + JSON.stringify(element.textContent.slice(0, 60));
  if (root.scrollWidth > width) problems.push("the page is " + root.scrollWidth + " px wide in " + width + " px");
  for (const element of document.querySelectorAll("table, tr, th, td, code, summary, details, section, h1, h2, p, li")) {
    const right = element.getBoundingClientRect().right;
    if (right > width + 0.5) problems.push(shown(element) + " ends at " + Math.round(right) + " px");
  }
  for (const cell of document.querySelectorAll("th, td")) {
    const edge = cell.getBoundingClientRect().right;
    for (const inner of cell.querySelectorAll("*")) {
      const right = inner.getBoundingClientRect().right;
      if (right > edge + 0.5) problems.push(shown(inner) + " spills " + Math.round(right - edge) + " px out of its cell");
    }
  }
  const top = (id) => { const section = document.getElementById(id); return section ? section.getBoundingClientRect().top : null; };
  const result = document.createElement("pre");
  result.id = "layout-result";
  result.textContent = JSON.stringify({
    width: width, scrollWidth: root.scrollWidth, innerWidth: window.innerWidth,
    tables: document.querySelectorAll("table").length, cells: document.querySelectorAll("td").length,
    opened: document.querySelectorAll("details[open]").length,
    fixedTables: Array.from(document.querySelectorAll("table")).filter((t) => getComputedStyle(t).tableLayout === "fixed").length,
    sections: ["totals", "failures", "violations", "repositories"].map(top),
    problems: problems,
  });
  document.body.appendChild(result);
})();
</script>"""


def chromium_binary() -> str:
    """The Chromium to run; skip when it is not installed, or fail with PLATFORM_GUARD_REQUIRE_TOOLS=1."""
    found = shutil.which(CHROMIUM)
    if found is not None:
        return found
    message = "chromium is not installed (Debian: apt-get install chromium; scripts/setup installs it)"
    if tools_required():
        pytest.fail(f"{message} ({REQUIRE_VARIABLE}=1)", pytrace=False)
    pytest.skip(message)


def run_chromium(binary: str, profile: Path, width: int, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with its own profile, at `width` x 1000 px, kept off the network: no proxy, every host name
    resolves to nothing, no background or component traffic. The pages it opens are local files with no URL in them."""
    command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
               f"--user-data-dir={profile}", f"--window-size={width},1000", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=profile.parent,
                          env={**os.environ, "HOME": str(profile.parent)})


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def keep_artifacts(request: pytest.FixtureRequest, *paths: Path) -> None:
    """Copy `paths` to $PLATFORM_GUARD_TEST_ARTIFACTS/<test id> when that names a directory."""
    target = os.environ.get(ARTIFACTS_VARIABLE)
    if not target or not Path(target).is_dir():
        return
    folder = Path(target) / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copy2(path, folder / path.name)


@pytest.mark.parametrize("width", [pytest.param(1400, id="desktop-1400px"), pytest.param(800, id="narrow-800px")])
def test_html_fits_the_window_in_chromium(swept: Swept, tmp_path: Path, request: pytest.FixtureRequest,
                                          width: int) -> None:
    """Laid out by headless Chromium with every repository opened, nothing is wider than the window: not the page,
    not a table, not a cell, and nothing spills out of its cell (long digests, references and commands wrap). The
    sections come in on-call's order and every table has the fixed layout."""
    binary = chromium_binary()
    report = tmp_path / "audit.html"
    report.write_text(swept.page, encoding="utf-8")
    measured = tmp_path / "audit-measured.html"
    measured.write_text(swept.page.replace("</body>", MEASURE_SCRIPT + "</body>"), encoding="utf-8")
    screenshot = tmp_path / f"audit-{width}px.png"

    shot = run_chromium(binary, tmp_path / "profile", width, f"--screenshot={screenshot}", report.as_uri())
    dump = run_chromium(binary, tmp_path / "profile", width, "--dump-dom", measured.as_uri())
    keep_artifacts(request, report, measured, *([screenshot] if screenshot.exists() else []))

    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    assert png_size(screenshot) == (width, 1000)
    assert dump.returncode == 0, dump.stderr[-2000:]
    found = re.search(r'<pre id="layout-result">(.*?)</pre>', dump.stdout, re.S)
    assert found is not None, dump.stdout[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["problems"] == [], layout["problems"][:20]
    assert layout["width"] == width and layout["scrollWidth"] <= width
    assert layout["opened"] == 3 and layout["cells"] > 150 and layout["fixedTables"] >= 5
    assert layout["sections"] == sorted(layout["sections"]) and None not in layout["sections"], layout["sections"]
