"""`demo`: the end-to-end demo on this machine (from a checkout: the demo's stack is test scaffolding)."""

from __future__ import annotations

import argparse
import importlib
import logging

from importer.entry.commands.common import (
    Subcommands,
    UsageError,
    with_examples,
)


def command_demo(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER

    try:  # the demo's local stack is test scaffolding: it ships with a checkout, never in the deployment package
        demo = importlib.import_module("testbed.demo")
    except ModuleNotFoundError:
        raise UsageError("the demo runs from a checkout of the repository: scripts/demo") from None
    logging.getLogger(OUTCOME_LOGGER).setLevel(logging.CRITICAL)  # the demo prints its own table of outcomes
    return int(demo.run_demo(keep=args.keep))


def register(commands: Subcommands) -> None:
    demo = commands.add_parser(
        "demo",
        **with_examples(
            "scripts/demo                          # from a checkout: installs what the demo needs, then runs it",
            "platform-guard demo --keep            # keep the demo's folder (registries, ledger) to look at",
        ),
        help="run the end-to-end demo on this machine",
        description="Start a local registry and the local host, push right and wrong images, print the outcomes. "
        "Needs docker-registry and skopeo (the README's first command installs them).",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo's folder instead of removing it")
    demo.set_defaults(run=command_demo)
