"""`copy SRC DST`: copy an image, a whole index or some of its platforms, with their referrers.

Into a guarded registry (PLATFORM_GUARD_REGISTRIES), or with `--policy FILE`, what the target tag would hold is judged
by the policy first (importer.app.copy_policy): a violation is refused (exit 1, nothing written) unless `--force`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from importer.core.reference import ReferenceError, parse_reference
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_USAGE,
    EXIT_VIOLATION,
    MOST_THREADS,
    CommandFailed,
    Subcommands,
    UsageError,
    settings_for,
    whole_number,
    with_examples,
)
from importer.entry.terminal import sanitise
from importer.ports.registry import RegistryError

if TYPE_CHECKING:
    from importer.app.copy_policy import CopyGate


def _has_explicit_tag(text: str) -> bool:
    """True when a reference names a tag itself (parse_reference fills in `latest` otherwise)."""
    name = text.partition("@")[0]
    return ":" in name.rsplit("/", 1)[-1]


def _judgement(gate: CopyGate, reference: str) -> dict[str, object]:
    """The verdict on what the target tag holds (or would hold), as the JSON of `check` names its fields."""
    from importer.core.decide import verdict_fields

    assert gate.verdict is not None
    return {"reference": reference, "repository": gate.target_repository, "tag": gate.target_tag,
            **verdict_fields(gate.facts, gate.verdict)}


def command_copy(args: argparse.Namespace) -> int:
    from importer.app.copy_policy import CopyGate, CopyRefused
    from importer.app.copying import CopyError, CopyEvent, copy_image
    from importer.core.platforms import PlatformError, parse, validate_pattern
    from importer.entry.composition import registry_directory_for
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
    settings = settings_for(args.policy)
    registries = registry_directory_for(settings)  # one client per host, one docker config store for both
    source_client, target_client = registries.client(source.registry), registries.client(target.registry)
    destination = f"{target.registry}/{target.repository}" + (f":{target_tag}" if target_tag else "")
    gate = None
    if args.policy or target.registry.lower() in settings.registries:
        gate = CopyGate(settings.policy, source_client, source.repository,
                        target_repository=target.repository, target_tag=target_tag, force=args.force)
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
            source_client, source.repository, source.manifest_reference,
            target_client, target.repository, target_tag,
            platforms=platforms, strict=args.strict, exclude=tuple(args.exclude or ()), flatten=args.flatten,
            parallel=args.parallel, progress=show, referrers=not args.no_referrers, vet=gate,
        )
    except CopyRefused as refused:
        print(sanitise(f"error: {destination}: {refused}; nothing was copied (--force copies anyway)"),
              file=sys.stderr)
        if args.json and gate is not None:
            print(json.dumps({"copied": False, **_judgement(gate, destination)}, indent=2))
        return EXIT_VIOLATION
    except CopyError as error:
        raise CommandFailed(f"error: {error}", exit_code=EXIT_USAGE, reference=args.src) from error
    except RegistryError as error:
        raise CommandFailed(f"error: copying {args.src} to {destination}: {error}", exit_code=EXIT_REGISTRY,
                            reference=args.src) from error
    finally:
        bar.finish()
        source_client.close()
        if target_client is not source_client:  # one registry: one client
            target_client.close()
    forced = gate is not None and gate.violation
    if forced:
        assert gate is not None and gate.verdict is not None
        print(sanitise(f"warning: {destination} violates the policy, copied anyway (--force): {gate.verdict.reason}"),
              file=sys.stderr)
    if args.json:
        document: dict[str, object] = dict(result.as_dict())
        if gate is not None and gate.verdict is not None:
            document.update(forced=forced, policy=_judgement(gate, destination))
        print(json.dumps(document, indent=2))
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


def register(commands: Subcommands) -> None:
    copy = commands.add_parser(
        "copy",
        **with_examples(
            "platform-guard copy docker.io/library/nginx:1.27 myreg.example.com/mirror/nginx:1.27 "
            "--platform linux/amd64,linux/arm64",
            "# a single platform's image under the tag, no index (consumers that refuse indexes)",
            "platform-guard copy quay.io/team/tool:2.1 myreg.example.com/tools/tool:2.1 --platform linux/amd64 "
            "--flatten",
            "# judge against a policy file first; refused with exit 1 when the tag would violate it",
            "platform-guard copy docker.io/library/redis:7 myreg.example.com/cache/redis:7 --exclude 'windows/*' "
            "--policy policy.yaml --json",
        ),
        help="copy an image, a whole index or some of its platforms",
        description="Copy SRC to DST: every blob (skipped when present, mounted within one registry, streamed "
        "otherwise), then child manifests, then the tag. With --platform, a new index holds the best child for each "
        "platform plus their attestations; --exclude drops platforms; --flatten points the tag at the one chosen "
        "manifest. The signatures, attestations and SBOMs (referrers) of every manifest copied unchanged come too, "
        "unless --no-referrers. Into a guarded registry (PLATFORM_GUARD_REGISTRIES), or with --policy, what the target tag "
        "would hold is first judged by the policy the guard applies to that repository and tag: a violation is "
        "refused before anything is written, unless --force. Exit codes: 0 copied, 1 refused: the target would "
        "violate the policy (nothing written), 2 usage error or platform not offered, 3 registry or network error.",
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
    copy.add_argument("--parallel", type=whole_number(1, MOST_THREADS), default=4, metavar="N",
                      help=f"blobs at a time, 1 to {MOST_THREADS} (default 4)")
    copy.add_argument("--no-referrers", action="store_true",
                      help="leave the signatures, attestations and SBOMs of what is copied behind (default: copied)")
    copy.add_argument("--policy", metavar="FILE",
                      help="judge the copy by this policy YAML (default: the settings' policy, for a guarded target)")
    copy.add_argument("--force", action="store_true",
                      help="copy even when the target would violate the policy (the guard then remediates it)")
    copy.add_argument("--json", action="store_true", help="print the result (or the refusal) as one JSON object")
    copy.set_defaults(run=command_copy)
