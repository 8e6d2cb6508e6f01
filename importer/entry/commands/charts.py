"""`chart-images REF_OR_TGZ`: the images a Helm chart references (`oci://` before a reference is taken off, as Helm
does)."""

from __future__ import annotations

import argparse
import json
import sys

from importer.core.reference import ReferenceError, parse_reference
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_USAGE,
    CommandFailed,
    Subcommands,
    UsageError,
    add_wide_flag,
    client_for,
    settings_for,
    with_examples,
)
from importer.entry.oci_reference import strip_oci_scheme
from importer.ports.registry import RegistryError


def command_chart_images(args: argparse.Namespace) -> int:
    from pathlib import Path

    from importer.app.chart_reading import read_chart_from_registry
    from importer.core.charts import ChartError
    from importer.entry.chart_file import is_chart_file, read_chart_file
    from importer.entry.terminal import display_for, format_chart_table

    target: str = strip_oci_scheme(args.chart)
    try:
        if Path(target).is_dir():
            raise UsageError(f"{target!r} is a directory: give a packaged chart (helm package) or a chart reference")
        if is_chart_file(target):
            info = read_chart_file(target)
        else:
            try:
                reference = parse_reference(target)
            except ReferenceError as error:
                raise UsageError(f"{error} (nor is it a chart archive on this machine)") from None
            registry = client_for(settings_for(None), reference.registry)
            try:
                info = read_chart_from_registry(registry, reference.repository, reference.manifest_reference)
            except RegistryError as error:
                raise CommandFailed(f"error: {target}: {error}", exit_code=EXIT_REGISTRY, reference=target) from error
            finally:
                registry.close()
    except ChartError as error:
        raise CommandFailed(f"error: {error}", exit_code=EXIT_USAGE, reference=target) from error
    print(json.dumps(info.as_dict(), indent=2) if args.json
          else format_chart_table(info, display_for(sys.stdout, wide=args.wide)))
    return EXIT_OK


def register(commands: Subcommands) -> None:
    chart_images = commands.add_parser(
        "chart-images",
        help="list the images a Helm chart references",
        description="Read a Helm chart (a packaged .tgz, or a chart pushed to an OCI registry) without unpacking it "
        "to disk, and list the images it references: from the artifacthub.io/images annotation (declared) and from "
        "values conventions (image maps and strings; heuristic, templates are not rendered). Exit codes: 0 listed, "
        "2 not a chart or refused (unsafe or unreadable archive), 3 registry or network error.",
        **with_examples(
            "platform-guard chart-images oci://myregistry.azurecr.io/charts/shop:1.0.0",
            "platform-guard chart-images ./shop-1.0.0.tgz --json",
            "platform-guard chart-images myregistry.azurecr.io/charts/shop@sha256:<digest>",
        ),
    )
    chart_images.add_argument(
        "chart", metavar="REF_OR_TGZ", help="chart reference (e.g. 127.0.0.1:5000/charts/shop:1.0.0, or with oci:// as Helm writes it) or a .tgz file"
    )
    chart_images.add_argument("--json", action="store_true", help="print the chart and its images as one JSON object")
    add_wide_flag(chart_images)
    chart_images.set_defaults(run=command_chart_images)
