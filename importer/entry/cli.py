"""The command line: `python -m importer COMMAND …` (each command has --help).

    check REF --policy FILE [--json]   verdict for one image; exit 0 compliant/ignored, 1 violation,
                                       2 usage or policy error, 3 registry or network error
    copy SRC DST [--platform P …]      copy an image, a whole index or some of its platforms (exit 0 ok,
                                       2 usage or platform not offered, 3 registry or network error)
    serve [--host H] [--port P]        the local host (Functions routes) for registry notifications
    outcomes [--json] [--limit N]      the newest recorded outcomes
    release QUARANTINED_REF [--to R:T] put a quarantined image back on purpose
    chart-images REF_OR_TGZ [--json]   the images a Helm chart references
    audit [REGISTRY[/GLOB]] [--remediate]  every tag of a registry against the policy; a dry run unless
                                       --remediate; --report FILE.md|.html (exit 0 nothing to do,
                                       1 violations left, 2 usage error, 3 tags or repositories unreadable)
    doctor [--json]                    the post-deploy smoke check: every permission the app needs, with its own
                                       settings and identity (exit 0 ok, 1 missing, 2 settings, 3 unreachable)
    demo                               a local registry, the local host, right and wrong pushes, a table of outcomes

Settings come from the environment (see importer/app/settings.py and the README); `check` against a loopback
registry needs none.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from importer import __version__
from importer.app.inspection import evaluate
from importer.app.policy_file import load_policy
from importer.app.settings import Settings, SettingsError, load_settings
from importer.core.decide import verdict_fields
from importer.core.manifests import ManifestError
from importer.core.numbers import NumberError, parse_whole_number, shown
from importer.core.outcome import Outcome
from importer.core.policy import Policy, PolicyError
from importer.core.reference import ReferenceError, parse_reference, reference_of
from importer.entry.composition import existing_ledger_for, pipeline_for, registry_directory_for
from importer.entry.terminal import TerminalLogFormatter, format_dead_letters, format_outcomes, sanitise
from importer.ports.ledger import LedgerUnavailable
from importer.ports.registry import Registry, RegistryError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_REGISTRY = 3


class UsageError(Exception):
    """Bad arguments, settings or policy: exit 2 with the message."""


def _settings(policy_path: str | None) -> Settings:
    try:
        policy: Policy | None = load_policy(policy_path) if policy_path else None
        return load_settings(policy=policy)
    except (PolicyError, SettingsError) as error:
        raise UsageError(str(error)) from None


def _client(settings: Settings, host: str) -> Registry:
    """A registry client for a host the user named, with its credentials and plain-HTTP permission from settings."""
    return registry_directory_for(settings).client(host)


def _print_verdict(record: dict[str, Any]) -> None:
    # Every value came from the registry (the config's os and architecture too): each line is sanitised whole.
    print(sanitise(f"{record['reference']}  {record['verdict']}"
                   + (f" → {record['action']}" if record["action"] != "none" else "")))
    rows = [
        ("digest", record["digest"]),
        ("kind", f"{record['kind']} ({record['media_type']})" if record["kind"] else None),
        ("platforms", ", ".join(record["platforms"]) or "—"),
        ("required", ", ".join(record["required"]) or "—"),
        ("missing", ", ".join(record["missing"])),
        ("forbidden", ", ".join(record["forbidden"])),
        ("inconsistent", "; ".join(record["inconsistent"])),
        ("reason", record["reason"]),
    ]
    for name, value in rows:
        if value:
            print(sanitise(f"  {name:<12} {value}"))


def command_check(args: argparse.Namespace) -> int:
    settings = _settings(args.policy)
    try:
        reference = parse_reference(args.ref)
    except ReferenceError as error:
        raise UsageError(str(error)) from None
    registry = _client(settings, reference.registry)
    try:
        facts, verdict = evaluate(
            settings.policy, registry, reference.repository, reference.digest or reference.tag or "latest",
            tag=reference.tag,
        )
    except (RegistryError, ManifestError) as error:
        print(sanitise(f"error: {args.ref}: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    fields = {"digest": reference.digest, **verdict_fields(facts, verdict)}
    record = Outcome(
        event_id="",
        received_at="",
        result="ignored",  # unused: `check` prints only the verdict fields
        repository=reference.repository,
        tag=reference.tag,
        reference=reference_of(reference.registry, reference.repository, reference.tag, fields["digest"]),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    ).verdict_dict()
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        _print_verdict(record)
    return EXIT_VIOLATION if verdict.verdict == "violation" else EXIT_OK


def _has_explicit_tag(text: str) -> bool:
    """True when a reference names a tag itself (parse_reference fills in `latest` otherwise)."""
    name = text.partition("@")[0]
    return ":" in name.rsplit("/", 1)[-1]


def command_copy(args: argparse.Namespace) -> int:
    from importer.app.copying import CopyError, CopyEvent, copy_image
    from importer.core.platforms import PlatformError, parse, validate_pattern
    from importer.entry.progress import ProgressBar, format_megabytes

    if args.all and args.platform:
        raise UsageError("--all copies every platform: give --all or --platform, not both")
    try:
        source = parse_reference(args.src)
        target = parse_reference(args.dst)
    except ReferenceError as error:
        raise UsageError(str(error)) from None
    if target.digest is not None:
        raise UsageError(f"DST {args.dst!r}: name a tag (or none, to reuse the source's), not a digest")
    target_tag = target.tag if _has_explicit_tag(args.dst) else source.tag
    try:
        # Repeated and comma-separated, as docker, skopeo and crane take them: `--platform linux/amd64,linux/arm64`.
        platforms = tuple(parse(text.strip()) for given in args.platform or () for text in given.split(","))
        for pattern in args.exclude or ():
            validate_pattern(pattern)
    except PlatformError as error:
        raise UsageError(str(error)) from None
    settings = _settings(None)
    clients: dict[str, Registry] = {}
    for host in dict.fromkeys((source.registry, target.registry)):
        clients[host] = _client(settings, host)
    destination = f"{target.registry}/{target.repository}" + (f":{target_tag}" if target_tag else "")
    bar = ProgressBar(f"copying {args.src}")

    def show(event: CopyEvent) -> None:
        if event.kind == "planned":
            bar.start(event.size, event.blobs)
        elif event.kind == "streamed":
            bar.advance(event.size)
        elif event.kind == "blob":
            bar.advance(0 if event.outcome == "uploaded" else event.size, items=1)

    try:
        result = copy_image(
            clients[source.registry], source.repository, source.manifest_reference,
            clients[target.registry], target.repository, target_tag,
            platforms=platforms, strict=args.strict, exclude=tuple(args.exclude or ()), flatten=args.flatten,
            parallel=args.parallel, progress=show, referrers=not args.no_referrers,
        )
    except CopyError as error:
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except RegistryError as error:
        print(sanitise(f"error: copying {args.src} to {destination}: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    finally:
        bar.finish()
        for client in clients.values():
            client.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        stats = result.stats
        print(sanitise(
            f"copied {source} → {destination}  digest {result.digest}  platforms {', '.join(result.platforms) or '—'}"
            f"  blobs: {stats.blobs_skipped} skipped, {stats.blobs_mounted} mounted, {stats.blobs_uploaded} uploaded, "
            f"{format_megabytes(stats.bytes_uploaded)}"
            + ("" if args.no_referrers else f"  referrers: {result.referrers_copied}"
               + (f" (signatures {result.signatures})" if result.signatures != "none" else ""))
        ))
    return EXIT_OK


# Documented ranges of the numeric flags (read strictly by importer.core.numbers: ASCII digits, no sign).
MOST_THREADS = 64  # --threads, --parallel
MOST_WORKERS = 32  # serve --workers
MOST_OUTCOMES = 100_000  # outcomes --limit
MOST_PAGE_SIZE = 10_000  # audit --page-size
_MESSAGE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # a SQLite queue's number, a Storage queue's GUID


def _whole_number(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`; anything else is a usage error naming the flag."""

    def parse(text: str) -> int:
        try:
            return parse_whole_number(text, least=least, most=most)
        except NumberError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _message_id(text: str) -> str:
    """An argparse type: a dead letter's id as `outcomes --failed` lists it."""
    if _MESSAGE_ID.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"expected a message id as `outcomes --failed` lists it (digits, or letters, digits and '-'), "
            f"got {shown(text)}"
        )
    return text


def command_serve(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for
    from importer.entry.serve import QueuedHost

    settings = _settings(args.policy)
    pipeline = pipeline_for(settings)
    # With worker processes, this process only answers: deciding here would slow every answer (docs/benchmarks.md).
    threads_here = 0 if args.workers else args.threads
    service = QueuedHost(pipeline, queue_for(settings), webhook_token=settings.webhook_token, host=args.host,
                         port=args.port, threads=threads_here, policy=worker_policy_for(settings),
                         doorbell=doorbell_for(settings))
    _outcome_lines_to_stdout(OUTCOME_LOGGER)
    print(f"Platform Guard listening on {service.url}", flush=True)
    # Settings and file names are text from outside the process too.
    print(sanitise(f"  guarded registries: {', '.join(settings.registries) or 'none (set PLATFORM_GUARD_REGISTRIES)'}"))
    print(sanitise(f"  policy: {settings.policy.source}   ledger: {settings.ledger_path}   "
                   f"queue: {settings.queue_path}"))
    if args.workers:
        print(f"  workers: {args.workers} process(es) of {args.threads} thread(s); this one only answers", flush=True)
    else:
        print(f"  workers: {args.threads} thread(s) in this process", flush=True)
    if not settings.webhook_token:
        print("  PLATFORM_GUARD_WEBHOOK_TOKEN is not set: every event route (registry-events, cloudevents, eventgrid) "
              "refuses every request", flush=True)
    processes = [_worker_process(args) for _ in range(args.workers)]
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        _stop_processes(processes)
        pipeline.ledger.close()
    return EXIT_OK


def command_work(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.worker import WorkerPool
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for

    settings = _settings(args.policy)
    pipeline = pipeline_for(settings)
    queue = queue_for(settings)
    pool = WorkerPool(queue, pipeline, threads=args.threads, policy=worker_policy_for(settings),
                      doorbell=doorbell_for(settings))
    _outcome_lines_to_stdout(OUTCOME_LOGGER)
    signal.signal(signal.SIGTERM, _interrupt)
    pool.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        queue.close()
        pipeline.ledger.close()
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, docker stop) shuts down like Ctrl-C: work in hand is settled


def _outcome_lines_to_stdout(logger_name: str) -> None:
    outcome_log = logging.getLogger(logger_name)  # one JSON line per outcome on stdout
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TerminalLogFormatter("%(message)s"))  # JSON lines: escaped already, so unchanged
    outcome_log.addHandler(handler)
    outcome_log.setLevel(logging.INFO)
    outcome_log.propagate = False


def _worker_process(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "importer", "work", "--threads", str(args.threads)]
    if args.policy:
        command += ["--policy", args.policy]
    return subprocess.Popen(command)


def _stop_processes(processes: list[subprocess.Popen[bytes]], *, timeout: float = 30.0) -> None:
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ledger_errors() -> tuple[type[Exception], ...]:
    """What a ledger raises when its storage fails: LedgerUnavailable (may pass) and, once the Table ledger is in use
    (its module loaded), TableLedgerError (a refusal that will not pass, e.g. a missing role): reported, exit 3."""
    tables = sys.modules.get("importer.adapters.ledger.tables")
    return (LedgerUnavailable,) if tables is None else (LedgerUnavailable, tables.TableLedgerError)


def command_outcomes(args: argparse.Namespace) -> int:
    settings = _settings(None)
    if args.failed:
        return _dead_letters(settings, args)
    ledger = existing_ledger_for(settings)  # the ledger the settings select: Table Storage in Azure, else SQLite
    if ledger is None:
        print(sanitise(f"no ledger at {settings.ledger_path} yet (set PLATFORM_GUARD_LEDGER, or "
                       f"PLATFORM_GUARD_TABLES_ENDPOINT for the Table ledger?)"), file=sys.stderr)
        return EXIT_OK
    try:
        fetched = ledger.outcomes(limit=args.limit if args.all else args.limit * 4, repository=args.repository)
    except _ledger_errors() as error:
        print(sanitise(f"error: reading outcomes: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    finally:
        ledger.close()
    outcomes = (fetched if args.all else [outcome for outcome in fetched if outcome.final])[: args.limit]
    if args.json:
        for outcome in outcomes:
            print(json.dumps(outcome.as_dict()))
    else:
        print(format_outcomes(outcomes))
    return EXIT_OK


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from importer.entry.composition import queue_for

    if not settings.uses_storage_queue and not settings.queue_path.exists():
        print(sanitise(f"no queue at {settings.queue_path} yet: nothing was given up on"), file=sys.stderr)
        return EXIT_OK
    queue = queue_for(settings)
    try:
        dead = queue.dead_letters(limit=args.limit)
    finally:
        queue.close()
    if args.json:
        for letter in dead:
            print(json.dumps({"message_id": letter.message_id, "key": letter.key, "attempts": letter.attempts,
                              "dead_at": letter.dead_at, "error": letter.error, "body": letter.body}))
    else:
        print(format_dead_letters(dead))
        if dead:
            print("\nre-drive: python -m importer redrive --all   (or: redrive MESSAGE_ID …)")
    return EXIT_OK


def command_redrive(args: argparse.Namespace) -> int:
    from importer.entry.composition import doorbell_for, queue_for

    if not args.all and not args.message_ids:
        raise UsageError("name the dead letters to re-drive (MESSAGE_ID …) or give --all")
    settings = _settings(None)
    queue = queue_for(settings)
    try:
        moved = queue.redrive(None if args.all else args.message_ids, now=time.time())
    finally:
        queue.close()
    doorbell = doorbell_for(settings)
    if doorbell is not None:
        if moved:
            doorbell.ring()
        doorbell.close()
    where = f"Storage queue {settings.queue_name}" if settings.uses_storage_queue else f"queue {settings.queue_path}"
    print(sanitise(f"{moved} event(s) back in the {where}; the workers decide them again"))
    return EXIT_OK


def command_release(args: argparse.Namespace) -> int:
    from importer.app.remediation import ReleaseError, release
    from importer.core.reference import validate_repository, validate_tag
    from importer.entry.composition import ledger_for

    settings = _settings(args.policy)
    try:
        reference = parse_reference(args.ref)
        destination: tuple[str, str] | None = None
        if args.to:
            repository, colon, tag = args.to.rpartition(":")
            if not colon or "/" in tag:
                raise ReferenceError(f"--to {args.to!r}: expected REPOSITORY:TAG in the same registry")
            validate_repository(repository)
            validate_tag(tag)
            destination = (repository, tag)
    except (ReferenceError, ValueError) as error:
        raise UsageError(str(error)) from None
    registry = _client(settings, reference.registry)
    ledger = ledger_for(settings)  # the guard's own ledger: its quarantine records, and releases it must see
    try:
        released = release(
            registry,
            settings.policy,
            ledger,
            host=reference.registry,
            quarantine_repository=reference.repository,
            quarantine_reference=reference.manifest_reference,
            to=destination,
            force=args.force,
            any_source=args.any_source,
        )
    except ReleaseError as error:
        raise UsageError(str(error)) from None
    except (RegistryError, ManifestError, *_ledger_errors()) as error:
        print(sanitise(f"error: releasing {args.ref}: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    finally:
        ledger.close()
        registry.close()
    print(sanitise(f"released {released.source} → {released.destination}  digest {released.digest}"
                   f"  referrers: {released.referrers_copied}"))
    return EXIT_OK


def command_chart_images(args: argparse.Namespace) -> int:
    from pathlib import Path

    from importer.app.chart_reading import read_chart_from_registry
    from importer.core.charts import ChartError
    from importer.entry.chart_file import read_chart_file
    from importer.entry.terminal import format_chart_table

    target: str = args.chart
    try:
        if Path(target).is_dir():
            raise UsageError(f"{target!r} is a directory: give a packaged chart (helm package) or a chart reference")
        if Path(target).is_file() or target.endswith((".tgz", ".tar.gz")):
            info = read_chart_file(target)
        else:
            try:
                reference = parse_reference(target)
            except ReferenceError as error:
                raise UsageError(f"{error} (nor is it a chart archive on this machine)") from None
            registry = _client(_settings(None), reference.registry)
            try:
                info = read_chart_from_registry(registry, reference.repository, reference.manifest_reference)
            except RegistryError as error:
                print(sanitise(f"error: {target}: {error}"), file=sys.stderr)
                return EXIT_REGISTRY
            finally:
                registry.close()
    except ChartError as error:
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(info.as_dict(), indent=2) if args.json else format_chart_table(info))
    return EXIT_OK


def command_audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.sweep import DRY_RUN, REMEDIATE, Sweep, SweepError, SweepOptions, parse_scope
    from importer.entry.audit_report import format_summary, write_report
    from importer.entry.progress import TagProgressBar

    settings = _settings(args.policy)
    if args.scope:
        try:
            host, glob = parse_scope(args.scope)
        except ValueError as error:
            raise UsageError(str(error)) from None
    elif len(settings.registries) == 1:
        host, glob = settings.registries[0], None
    else:
        raise UsageError(f"name the registry to audit as REGISTRY[/REPOSITORY_GLOB] (PLATFORM_GUARD_REGISTRIES has "
                         f"{len(settings.registries)})")
    report_path = Path(args.report) if args.report else None
    if report_path is not None and report_path.suffix.lower() not in (".md", ".html", ".htm"):
        raise UsageError(f"--report {args.report!r}: the name must end in .md or .html")
    try:
        options = SweepOptions(mode=REMEDIATE if args.remediate else DRY_RUN, repositories=glob,
                               parallel=args.parallel, page_size=args.page_size, policy_hint=args.policy)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.remediate and host not in settings.registries:
        raise UsageError(f"--remediate changes {host}: only guarded registries are remediated "
                         f"(add it to PLATFORM_GUARD_REGISTRIES)")
    pipeline = pipeline_for(settings) if args.remediate else None
    ledger = pipeline.ledger if pipeline is not None else existing_ledger_for(settings)  # releases it reads
    outcome_log = logging.getLogger(OUTCOME_LOGGER)
    level = outcome_log.level
    outcome_log.setLevel(logging.CRITICAL)  # one line per tag would drown the terminal: the report lists them
    registries = pipeline.registries if pipeline is not None else registry_directory_for(settings)
    sweep = Sweep(host, policy=settings.policy, registries=registries, pipeline=pipeline, ledger=ledger,
                  paused_repositories=settings.paused_repositories, options=options)
    bar = TagProgressBar(f"auditing {args.scope or host}")
    try:
        report = sweep.run(progress=bar)
    except SweepError as error:
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    finally:
        bar.finish()
        outcome_log.setLevel(level)
        sweep.registry.close()
        if ledger is not None:
            ledger.close()
    if report_path is not None:
        write_report(report, report_path)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_summary(report))
        if report_path is not None:
            print(sanitise(f"report written to {report_path}"))
    if report.failures or not report.complete:
        return EXIT_REGISTRY
    return EXIT_VIOLATION if report.pending else EXIT_OK


def command_doctor(args: argparse.Namespace) -> int:
    from importer.entry.doctor import run_doctor

    return run_doctor(as_json=args.json, timeout=float(args.timeout))


def command_demo(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER

    try:  # the demo's local stack is test scaffolding: it ships with a checkout, never in the deployment package
        demo = importlib.import_module("testbed.demo")
    except ModuleNotFoundError:
        raise UsageError("the demo runs from a checkout of the repository: scripts/demo") from None
    logging.getLogger(OUTCOME_LOGGER).setLevel(logging.CRITICAL)  # the demo prints its own table of outcomes
    return int(demo.run_demo(keep=args.keep))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m importer",
        description="Platform Guard: keep every image in a registry runnable on the platforms your clusters use.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument("--version", action="version", version=f"platform-guard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="verdict for one image reference",
        description="Inspect REF and compare the platforms it offers with the policy. Exit codes: 0 compliant or "
        "ignored, 1 violation, 2 usage or policy error, 3 registry or network error.",
    )
    check.add_argument("ref", metavar="REF", help="image reference, e.g. 127.0.0.1:5000/team/app:1.0 or …@sha256:…")
    check.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    check.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    check.set_defaults(run=command_check)

    copy = commands.add_parser(
        "copy",
        help="copy an image, a whole index or some of its platforms",
        description="Copy SRC to DST: every blob (skipped when present, mounted within one registry, streamed "
        "otherwise), then child manifests, then the tag. With --platform, a new index holds the best child for each "
        "platform plus their attestations; --exclude drops platforms; --flatten points the tag at the one chosen "
        "manifest. The signatures, attestations and SBOMs (referrers) of every manifest copied unchanged come too, "
        "unless --no-referrers. Exit codes: 0 copied, 2 usage error or platform not offered, 3 registry or network error.",
    )
    copy.add_argument("src", metavar="SRC", help="source reference, e.g. 127.0.0.1:5000/team/app:1.0 or …@sha256:…")
    copy.add_argument("dst", metavar="DST", help="target reference; without a tag, the source's tag is used")
    copy.add_argument(
        "--platform", action="append", metavar="P",
        help="copy the best child for P (os/arch[/variant]); repeatable, or comma-separated: linux/amd64,linux/arm64"
    )
    copy.add_argument("--all", action="store_true", help="copy every platform as is (the default without --platform)")
    copy.add_argument("--strict", action="store_true", help="a child must match P exactly (no compatible fallback)")
    copy.add_argument("--flatten", action="store_true", help="with one --platform: tag that child manifest itself")
    copy.add_argument(
        "--exclude", action="append", metavar="PATTERN", help="drop platforms matching PATTERN (e.g. 'windows/*')"
    )
    copy.add_argument("--parallel", type=_whole_number(1, MOST_THREADS), default=4, metavar="N",
                      help=f"blobs at a time, 1 to {MOST_THREADS} (default 4)")
    copy.add_argument("--no-referrers", action="store_true",
                      help="leave the signatures, attestations and SBOMs of what is copied behind (default: copied)")
    copy.add_argument("--json", action="store_true", help="print the result as one JSON object")
    copy.set_defaults(run=command_copy)

    serve = commands.add_parser(
        "serve",
        help="run the local host for registry notifications",
        description="Serve the Functions routes locally: POST /runtime/webhooks/eventgrid?functionName=NAME, "
        "POST /api/registry-events, OPTIONS/POST /api/cloudevents, GET /api/health.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_whole_number(0, 65535), default=7071,
                       help="port, 0 to 65535; 0: any free port (default 7071, like the Functions host)")
    serve.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    serve.add_argument("--threads", type=_whole_number(1, MOST_THREADS), default=4, metavar="N",
                       help=f"worker threads per worker process, 1 to {MOST_THREADS} (default 4)")
    serve.add_argument("--workers", type=_whole_number(0, MOST_WORKERS), default=1, metavar="N",
                       help=f"worker processes (`work`) to start, 0 to {MOST_WORKERS}; this one then only answers. "
                            "0: the threads decide in this process (default 1)")
    serve.set_defaults(run=command_serve)

    work = commands.add_parser(
        "work",
        help="decide queued events (a worker process beside serve)",
        description="Take events from the queue that `serve` fills and decide them, until interrupted.",
    )
    work.add_argument("--threads", type=_whole_number(1, MOST_THREADS), default=4, metavar="N",
                      help=f"worker threads, 1 to {MOST_THREADS} (default 4)")
    work.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    work.set_defaults(run=command_work)

    outcomes = commands.add_parser(
        "outcomes", help="show recorded outcomes", description="Show the newest outcomes in the ledger."
    )
    outcomes.add_argument("--json", action="store_true", help="one JSON record per line, newest first")
    outcomes.add_argument("--limit", type=_whole_number(1, MOST_OUTCOMES), default=50, metavar="N",
                          help=f"how many, 1 to {MOST_OUTCOMES} (default 50)")
    outcomes.add_argument("--repository", help="only this repository")
    outcomes.add_argument("--all", action="store_true", help="also the attempts (`retrying`) before each final outcome")
    outcomes.add_argument("--failed", action="store_true",
                          help="the events the workers gave up on (dead letters), with the command that re-drives them")
    outcomes.set_defaults(run=command_outcomes)

    redrive = commands.add_parser(
        "redrive",
        help="put dead-lettered events back in the queue",
        description="Put events the workers gave up on (see `outcomes --failed`) back in the queue, attempts reset.",
    )
    redrive.add_argument("message_ids", nargs="*", type=_message_id, metavar="MESSAGE_ID",
                         help="dead letters to re-drive")
    redrive.add_argument("--all", action="store_true", help="every dead letter")
    redrive.set_defaults(run=command_redrive)

    release = commands.add_parser(
        "release",
        help="put a quarantined image back on purpose",
        description="Copy a quarantined image back (same digest, blobs mounted) to the repository and tag it was "
        "quarantined from, or to --to REPO:TAG, and remember it as released so it is not quarantined again. Only "
        "images in the policy's quarantine repositories (or locked in place by quarantine.mode: lock) are released; "
        "anything else exits 2 unless --any-source is given.",
    )
    release.add_argument("ref", metavar="QUARANTINED_REF", help="e.g. REGISTRY/quarantine/team/app:1.0.sha256-<hex>")
    release.add_argument("--to", metavar="REPO:TAG", help="where to put it (default: where it came from)")
    release.add_argument("--force", action="store_true", help="overwrite a destination tag that moved since")
    release.add_argument("--any-source", action="store_true",
                         help="release an image that is not in a quarantine repository (nor locked by one): it is "
                              "copied to --to and its digest is exempt from the policy from then on")
    release.add_argument("--policy", metavar="FILE", help="policy YAML, for its quarantine repository template")
    release.set_defaults(run=command_release)

    chart_images = commands.add_parser(
        "chart-images",
        help="list the images a Helm chart references",
        description="Read a Helm chart (a packaged .tgz, or a chart pushed to an OCI registry) without unpacking it "
        "to disk, and list the images it references: from the artifacthub.io/images annotation (declared) and from "
        "values conventions (image maps and strings; heuristic, templates are not rendered). Exit codes: 0 listed, "
        "2 not a chart or refused (unsafe or unreadable archive), 3 registry or network error.",
    )
    chart_images.add_argument(
        "chart", metavar="REF_OR_TGZ", help="chart reference (e.g. 127.0.0.1:5000/charts/shop:1.0.0) or a .tgz file"
    )
    chart_images.add_argument("--json", action="store_true", help="print the chart and its images as one JSON object")
    chart_images.set_defaults(run=command_chart_images)

    audit = commands.add_parser(
        "audit",
        help="check every tag of a registry against the policy (and fix them with --remediate)",
        description="Sweep a registry: list every repository (/v2/_catalog, or ACR's listing API) and every tag, "
        "following pagination, and judge each tag as the event path does. Quarantine repositories are skipped. "
        "A dry run by default: nothing is changed or recorded, and each violation comes with what the event path "
        "would do and a command that fixes it. --remediate hands each tag to the pipeline as a push event: "
        "re-imports and quarantines happen, with every safety rule, and outcomes are recorded (trigger: sweep). "
        "Exit codes: 0 nothing left to do, 1 violations left, 2 usage or policy error, 3 tags or repositories "
        "that could not be read.",
    )
    audit.add_argument("scope", nargs="?", metavar="REGISTRY[/REPO_GLOB]",
                       help="e.g. 127.0.0.1:5000 or myreg.azurecr.io/team/** (default: the one guarded registry)")
    audit.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    audit.add_argument("--remediate", action="store_true", help="re-import or quarantine violations, as events do")
    audit.add_argument("--json", action="store_true", help="print the report as one JSON object")
    audit.add_argument("--report", metavar="FILE", help="write the report to FILE.md (Markdown) or FILE.html")
    audit.add_argument("--parallel", type=_whole_number(1, MOST_THREADS), default=8, metavar="N",
                       help=f"tags read at once, 1 to {MOST_THREADS} (default 8)")
    audit.add_argument("--page-size", type=_whole_number(1, MOST_PAGE_SIZE), metavar="N",
                       help=f"ask the registry for N names per page, 1 to {MOST_PAGE_SIZE}")
    audit.set_defaults(run=command_audit)

    doctor = commands.add_parser(
        "doctor",
        help="check every permission the app needs, with its own settings and identity (post-deploy smoke check)",
        description="With the settings in the environment (as the Functions app has them) and the app's identity, "
        "check each guarded registry (reachable, catalog, read, push, delete or lock), server-side import, the "
        "upstreams, the ledger, the queue, the Event Grid topic and the alert webhook, changing nothing; print what "
        "is missing and the command that grants it. Exit codes: 0 all ok, 1 something missing, 2 usage or settings "
        "error, 3 unreachable or undecided.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    doctor.add_argument("--timeout", type=_whole_number(1, 600), default=30, metavar="SECONDS",
                        help="the longest any one check may take, 1 to 600 (default 30)")
    doctor.set_defaults(run=command_doctor)

    demo = commands.add_parser(
        "demo",
        help="run the end-to-end demo on this machine",
        description="Start a local registry and the local host, push right and wrong images, print the outcomes. "
        "Needs docker-registry and skopeo (the README's first command installs them).",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo's folder instead of removing it")
    demo.set_defaults(run=command_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    to_stderr = logging.StreamHandler()  # log lines quote registries and senders: sanitised for the terminal
    to_stderr.setFormatter(TerminalLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[to_stderr])
    try:
        return int(args.run(args))
    except UsageError as error:
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_USAGE
