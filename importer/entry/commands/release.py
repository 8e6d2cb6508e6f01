"""`release QUARANTINED_REF`: put a quarantined image back on purpose."""

from __future__ import annotations

import argparse

from importer.core.manifests import ManifestError
from importer.core.reference import ReferenceError, parse_reference
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    CommandFailed,
    Subcommands,
    UsageError,
    client_for,
    ledger_errors,
    settings_for,
    with_examples,
)
from importer.entry.terminal import sanitise
from importer.ports.registry import RegistryError


def command_release(args: argparse.Namespace) -> int:
    from importer.app.remediation import ReleaseError, release
    from importer.core.reference import validate_repository, validate_tag
    from importer.entry.composition import ledger_for

    settings = settings_for(args.policy)
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
    registry = client_for(settings, reference.registry)
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
    except (RegistryError, ManifestError, *ledger_errors()) as error:
        raise CommandFailed(f"error: releasing {args.ref}: {error}", exit_code=EXIT_REGISTRY,
                            reference=args.ref) from error
    finally:
        ledger.close()
        registry.close()
    print(sanitise(f"released {released.source} → {released.destination}  digest {released.digest}"
                   f"  referrers: {released.referrers_copied}"))
    return EXIT_OK


def register(commands: Subcommands) -> None:
    release = commands.add_parser(
        "release",
        **with_examples(
            "platform-guard release myreg.azurecr.io/quarantine/team/app:1.0.sha256-<hex>   # back where it came from",
            "platform-guard release REGISTRY/quarantine/team/app:1.0.sha256-<hex> --to team/app:debug",
        ),
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
