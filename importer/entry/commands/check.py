"""`check REF`: the verdict for one image reference, as text or as the verdict JSON of the contract."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from importer.app.inspection import evaluate
from importer.core.decide import verdict_fields
from importer.core.manifests import ManifestError
from importer.core.outcome import Outcome
from importer.core.reference import ReferenceError, parse_reference, reference_of
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_VIOLATION,
    Subcommands,
    UsageError,
    client_for,
    settings_for,
)
from importer.entry.terminal import sanitise
from importer.ports.registry import RegistryError


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
    settings = settings_for(args.policy)
    try:
        reference = parse_reference(args.ref)
    except ReferenceError as error:
        raise UsageError(str(error)) from None
    registry = client_for(settings, reference.registry)
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


def register(commands: Subcommands) -> None:
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
