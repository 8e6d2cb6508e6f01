"""Text from outside the process reaches a terminal only through importer.entry.terminal.sanitise.

A registry controls image configs (`os`, `architecture`), error bodies and everything the ledger then records; an
event sender controls reasons and names. Printed raw, ESC sequences clear the screen or retitle the window, CR/LF
forge lines that look like ours, bidi controls reorder what is shown, and a lone surrogate crashes the print itself.
Here a fake registry (testbed.http_server.LocalHttpServer on 127.0.0.1) serves such text to the real CLI
(`python -m importer …` in a subprocess), `outcomes` reads a ledger holding it, and the text renderers (tables,
progress bars, audit summaries, log lines) get it directly: the output never holds a raw control character
other than the newlines (and the progress bar's carriage return) the CLI itself writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.sweep import SweepItem, SweepReport
from importer.core.charts import ChartImage, ChartInfo
from importer.core.outcome import Outcome
from importer.core.safe_text import UNSAFE_CHARACTERS
from importer.entry.audit_report import format_summary
from importer.entry.progress import ProgressBar
from importer.entry.terminal import (
    TerminalLogFormatter,
    format_chart_table,
    format_dead_letters,
    format_outcomes,
    sanitise,
)
from importer.ports.queue import DeadLetter
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.registry import free_port

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
FORGED_ARCHITECTURE = "amd64\x1b[2J\r\nforged"
HOSTILE = {
    "clear-screen": "a\x1b[2J\x1b[Hb",
    "window-title": "a\x1b]0;pwned\x07b",
    "forged-line": "a\r\nerror: forged",
    "c1-csi": "a\x9b31mb",
    "delete": "a\x7fb",
    "bidi-override": "a\u202etxt.exe",
    "bidi-isolate": "a\u2067b\u2069",
    "line-separator": "a\u2028b",
    "lone-surrogate": "a\ud800b",
}


def raw_controls(text: str, *, allowed: str = "\n") -> list[str]:
    """The unsafe characters in `text`, apart from those the CLI writes itself."""
    return [match.group() for match in UNSAFE_CHARACTERS.finditer(text) if match.group() not in allowed]


# -- the sanitiser ------------------------------------------------------------------------------------------


SANITISED = {
    "escape": ("amd64\x1b[2J", "amd64\\x1b[2J"),
    "bell": ("ding\x07", "ding\\x07"),
    "cr-lf": ("a\r\nb", "a\\r\\nb"),
    "tab": ("a\tb", "a\\tb"),
    "nul": ("a\x00b", "a\\x00b"),
    "delete": ("a\x7f", "a\\x7f"),
    "c1-csi": ("a\x9b2J", "a\\x9b2J"),
    "bidi-override": ("a\u202eb", "a\\u202eb"),
    "bidi-isolates": ("\u2066a\u2069", "\\u2066a\\u2069"),
    "line-separator": ("a\u2028b", "a\\u2028b"),
    "lone-surrogate": ("a\ud800b", "a\\ud800b"),
    "plain-ascii": ("linux/amd64", "linux/amd64"),
    "non-ascii-kept": ("équipe/app — 😀 日本", "équipe/app — 😀 日本"),
    "backslash-kept": ("C:\\path", "C:\\path"),
}


@pytest.mark.parametrize(("text", "shown"), SANITISED.values(), ids=SANITISED.keys())
def test_sanitise_shows_control_characters_escaped(text: str, shown: str) -> None:
    assert sanitise(text) == shown
    sanitise(text).encode("utf-8")


# -- renderers ----------------------------------------------------------------------------------------------


def hostile_outcome(text: str, number: int) -> Outcome:
    return Outcome(event_id=f"e{number}{text}", received_at="2026-11-26T10:00:00Z", result="failed",
                   repository=f"team/app{text}", reference=f"r.example/team/app:{text}",
                   platforms=(f"linux/amd64{text}",), reason=f"reason {text}", error=f"error {text}")


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_tables_escape_every_cell(text: str) -> None:
    """Outcomes, dead letters and chart tables: one line per row, no raw control character."""
    outcomes = format_outcomes([hostile_outcome(text, 1), hostile_outcome(text, 2)])
    assert raw_controls(outcomes) == [] and len(outcomes.split("\n")) == 3
    letters = format_dead_letters([DeadLetter(f"m{text}", f"tag:{text}", text, 3, 0.0, 0.0, f"boom {text}")])
    assert raw_controls(letters) == [] and len(letters.split("\n")) == 2
    image = ChartImage(f"docker.io/x{text}", "docker.io", "x", "1", None, (f"linux/{text}",), (f"values:{text}",),
                       True)
    chart = format_chart_table(ChartInfo(f"shop{text}", f"1{text}", text, (text,), (image,), (f"sub{text}",),
                                         (f"image: {text}",)))
    assert raw_controls(chart) == [] and len(chart.split("\n")) == 5


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_audit_summary_escapes_registry_text(text: str) -> None:
    item = SweepItem(registry="r.example", repository=f"team/app{text}", tag="1", status="violation",
                     verdict="violation", action="quarantine", reason=f"offers {text}",
                     suggestion=f"python -m importer copy {text}")
    failed = SweepItem(registry="r.example", repository="team/b", tag="1", status="failed", error=f"HTTP 500{text}")
    report = SweepReport(sweep_id="s1", registry="r.example", mode="dry-run", repositories=None,
                         started_at="2026-11-26T10:00:00Z", finished_at="2026-11-26T10:00:01Z", duration_seconds=1.0,
                         items=(item, failed), skipped_repositories=(f"quarantine/x{text}",),
                         repository_errors=((f"team/c{text}", f"denied {text}"),), policy_source=f"policy{text}")
    summary = format_summary(report)
    assert raw_controls(summary) == []
    assert not any(line.startswith("error: forged") for line in summary.split("\n"))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_progress_bar_label_is_escaped(text: str) -> None:
    stream = io.StringIO()
    bar = ProgressBar(f"copying r.example/{text}", stream=stream, enabled=True)
    bar.start(100, 2)
    bar.advance(50, items=1)
    bar.finish()
    drawn = stream.getvalue()
    assert raw_controls(drawn, allowed="\r\n") == []
    # Its own control characters only: each redraw starts with "\r" and the label, one "\n" at the end.
    assert drawn.endswith("\n") and drawn.count("\n") == 1
    assert all(redraw.startswith(f"copying r.example/{sanitise(text)} [") for redraw in drawn.split("\r")[1:])


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_log_lines_for_a_terminal_are_escaped(text: str) -> None:
    """The CLI's log handler escapes messages, their arguments and the text of a logged exception."""
    formatter = TerminalLogFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise ValueError(f"registry said {text}")
    except ValueError:
        record = logging.LogRecord("platform_guard.test", logging.WARNING, __file__, 1, "read %s: %s",
                                   (f"team/app{text}", f"denied {text}"), sys.exc_info())
    line = formatter.format(record)
    first, *traceback = line.split("\n")
    assert raw_controls(line) == [] and "registry said" in traceback[-1]
    assert first.startswith("WARNING platform_guard.test: read team/app")


# -- the CLI as operators run it, against a fake registry ---------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Served:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def image(config: dict[str, object]) -> dict[str, Served]:
    """A manifest and its config, as a registry serves them under repository evil/app, tag 1."""
    config_raw = json.dumps(config).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config_raw),
                                      "size": len(config_raw)},
                           "layers": []}).encode()
    manifest_headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest_of(manifest)}
    return {
        "/v2/evil/app/manifests/1": Served(200, manifest, manifest_headers),
        f"/v2/evil/app/manifests/{digest_of(manifest)}": Served(200, manifest, manifest_headers),
        f"/v2/evil/app/blobs/{digest_of(config_raw)}": Served(200, config_raw,
                                                              {"Content-Type": "application/octet-stream"}),
    }


def error(status: int, code: str, message: str) -> Served:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return Served(status, body, {"Content-Type": "application/json"})


class _RegistryHandler(QuietRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        routes: dict[str, Served] = self.server.owner
        served = routes.get(self.path.split("?")[0], error(404, "NAME_UNKNOWN", "unknown"))
        self.send_response(served.status)
        for name, value in {"Content-Length": str(len(served.body)), **served.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(served.body)

    do_HEAD = do_GET


@pytest.fixture
def fake_registry() -> Iterator[str]:
    """A registry on 127.0.0.1 that serves hostile text: an image config whose architecture forges a line and
    clears the screen, and error bodies with ESC and BEL. Yields its host."""
    routes = {
        **image({"os": "linux\x07", "architecture": FORGED_ARCHITECTURE, "rootfs": {"type": "layers",
                                                                                     "diff_ids": []}}),
        "/v2/": Served(200, b"{}", {"Content-Type": "application/json"}),
        "/v2/evil/gone/manifests/1": error(404, "MANIFEST_UNKNOWN", "gone\x1b[2J\x1b[H\x07\r\nerror: forged"),
        "/v2/evil/denied/manifests/1": error(403, "DENIED", "no\x1b]0;pwned\x07 way\u202e\r\nerror: forged"),
    }
    with LocalHttpServer(_RegistryHandler, owner=routes, silenced_errors=(ConnectionError,)) as server:
        yield server.host


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PLATFORM_GUARD_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, encoding="utf-8", errors="surrogateescape", timeout=60)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """Neither stream holds a raw control character other than newlines, a forged line, or a traceback."""
    for stream in (result.stdout, result.stderr):
        assert raw_controls(stream) == [], stream
        assert not any(line.startswith(("error: forged", "forged")) for line in stream.split("\n")), stream
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ndefaults:\n  require: [linux/amd64]\n")
    return path


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_check_shows_a_hostile_image_config_escaped(fake_registry: str, policy: Path, verbose: bool) -> None:
    """`check` prints the platform the config declares with its ESC, CR and LF escaped, on one line."""
    result = run(*(["-v"] if verbose else []), "check", f"{fake_registry}/evil/app:1", "--policy", str(policy))
    assert result.returncode == 1, result.stderr
    assert_clean(result)
    assert "\\x1b[2j\\r\\nforged" in result.stdout  # shown, escaped (platform names are lower-cased)


def test_check_json_stays_json(fake_registry: str, policy: Path) -> None:
    result = run("check", f"{fake_registry}/evil/app:1", "--policy", str(policy), "--json")
    assert_clean(result)
    assert any("forged" in platform for platform in json.loads(result.stdout)["platforms"])


@pytest.mark.parametrize("repository", ["evil/gone", "evil/denied"])
def test_registry_error_messages_are_escaped(fake_registry: str, policy: Path, repository: str) -> None:
    """The message of a JSON error body reaches the error line escaped: no screen cleared, no forged line."""
    result = run("check", f"{fake_registry}/{repository}:1", "--policy", str(policy))
    assert result.returncode == 3
    assert_clean(result)
    assert "\\x1b" in result.stderr and result.stderr.count("\n") == 1


def test_outcomes_over_a_ledger_holding_hostile_text(tmp_path: Path) -> None:
    """`outcomes` (table, --all and --json) prints what a registry or sender put in the ledger, escaped."""
    ledger_path = tmp_path / "ledger.db"
    ledger = SqliteLedger(ledger_path)
    for number, text in enumerate(HOSTILE.values()):
        ledger.record(hostile_outcome(text, number))
    ledger.close()
    env = {"PLATFORM_GUARD_LEDGER": str(ledger_path)}
    for args in (["outcomes"], ["outcomes", "--all"], ["outcomes", "--json"]):
        result = run(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert_clean(result)
        assert len(result.stdout.split("\n")) == len(HOSTILE) + (1 if "--json" in args else 2)


def test_serve_start_up_lines_are_escaped(tmp_path: Path) -> None:
    """`serve` prints the policy file's path and the ledger's from settings: they are outside text too."""
    policy = tmp_path / "policy\x1b[2J\r\nforged.yaml"
    policy.write_text("version: 1\ndefaults:\n  require: [linux/amd64]\n")
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PLATFORM_GUARD_")}
    environment.update(PLATFORM_GUARD_LEDGER=str(tmp_path / "ledger\x07.db"))
    process = subprocess.Popen([sys.executable, "-m", "importer", "serve", "--port", str(port), "--workers", "0",
                                "--threads", "1", "--policy", str(policy)], cwd=ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        lines = []
        deadline = time.monotonic() + 20
        while len(lines) < 3 and time.monotonic() < deadline:
            lines.append(process.stdout.readline())
    finally:
        process.terminate()
        rest, stderr = process.communicate(timeout=20)
    printed = "".join(lines) + rest
    assert any("policy:" in line for line in lines), (printed, stderr)
    assert raw_controls(printed) == [] and raw_controls(stderr) == [], printed
    assert not any(line.startswith("forged") for line in printed.split("\n"))
