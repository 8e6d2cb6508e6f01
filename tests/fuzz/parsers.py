#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, on libFuzzer) of the parsers that read what other people control.

Not part of any test run, and atheris is not a dependency of the project: run it by hand, in a scratch virtual
environment (atheris 3.0.0 ships manylinux wheels for CPython 3.11; the core parsers need only PyYAML):

    python3.11 -m venv /tmp/fuzz-venv
    /tmp/fuzz-venv/bin/pip install atheris==3.0.0 PyYAML==6.0.4
    /tmp/fuzz-venv/bin/python tests/fuzz/parsers.py --list
    /tmp/fuzz-venv/bin/python tests/fuzz/parsers.py eventgrid -max_total_time=300 -timeout=5 -rss_limit_mb=2048 \\
        /tmp/corpus-eventgrid

The first argument names a target (`--list` prints them); the rest are libFuzzer's. A corpus directory that is
empty is seeded first with valid inputs, so the fuzzer starts from real shapes. A target fails, and libFuzzer writes
a `crash-<sha1>` file, when the parser raises anything but its documented errors; `-timeout` (seconds per input)
and `-rss_limit_mb` make super-linear time and memory failures too. Reproduce one input with
`tests/fuzz/parsers.py TARGET crash-<sha1>`. The property suite (tests/property) keeps what is found closed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: importer/ is not installed

with atheris.instrument_imports():
    from importer.core.charts import ChartError, read_chart_archive
    from importer.core.events import (
        EventPayloadError,
        parse_cloudevents,
        parse_eventgrid,
        parse_registry_notification,
    )
    from importer.core.manifests import ManifestError, parse_manifest, platform_from_config
    from importer.core.platforms import PlatformError, from_oci, matches_pattern, validate_pattern
    from importer.core.platforms import parse as parse_platform
    from importer.core.policy import PolicyError, parse_policy, repository_matcher
    from importer.core.reference import ReferenceError, parse_reference


def _text(data: bytes) -> str:
    """Bytes as text the way a header or a setting arrives: UTF-8, invalid bytes kept as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def _platform_pattern(data: bytes) -> None:
    pattern, _, platform = _text(data).partition("\n")
    validate_pattern(pattern)
    matches_pattern(pattern, parse_platform(platform or "linux/amd64"))


def _oci_platform(data: bytes) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # not JSON: nothing for from_oci to read (json is not under test here)
        return
    if isinstance(document, dict):
        from_oci(document)


def _glob(data: bytes) -> None:
    glob, _, name = _text(data).partition("\n")
    repository_matcher((glob,))(name)


@dataclass(frozen=True, slots=True)
class Target:
    """One parser: how to call it on the fuzzer's bytes, the errors it documents, and valid inputs to start from."""

    call: Callable[[bytes], object]
    documented: tuple[type[BaseException], ...]
    seeds: tuple[bytes, ...]


_DIGEST = "sha256:" + "ab" * 32
_ACR_DATA = {"target": {"mediaType": "application/vnd.oci.image.index.v1+json", "size": 856, "digest": _DIGEST,
                        "repository": "team/web", "tag": "1.4.2"},
             "request": {"host": "contoso.azurecr.io", "useragent": "docker/24.0.7"}, "actor": {"name": "ci"}}
_INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _DIGEST, "size": 418,
     "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}]}
_POLICY = b"""version: 1
defaults:
  require: [linux/amd64]
  forbid: ["windows/*"]
rules:
  - repositories: ["dockerhub/**"]
    upstream: "docker.io/{path}"
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
"""

def _chart_seed() -> bytes:
    """A chart with values, a sub-chart and an annotation, built by the testbed (not instrumented: not under test)."""
    from testbed.charts import ChartSpec, chart_archive

    values = {"image": {"repository": "team/shop", "tag": "1.0"}, "redis": {"image": "bitnami/redis:7.2"}}
    return chart_archive(ChartSpec("shop", "1.0.0", app_version="1.0", values=values,
                                   annotations={"platform-guard.io/platforms": "linux/amd64, linux/arm64"},
                                   subcharts=(ChartSpec("redis", "18.0.0", values={"image": "redis:7"}),)))


TARGETS: dict[str, Target] = {
    "eventgrid": Target(parse_eventgrid, (EventPayloadError,), (json.dumps([{
        "id": "e1", "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-05-14T09:12:47Z",
        "data": _ACR_DATA}]).encode(),)),
    "cloudevents": Target(lambda data: parse_cloudevents(data, "application/cloudevents+json"), (EventPayloadError,),
                          (json.dumps({"specversion": "1.0", "id": "e1", "source": "/registries/r", "data": _ACR_DATA,
                                       "type": "Microsoft.ContainerRegistry.ImagePushed"}).encode(),)),
    "notifications": Target(lambda data: parse_registry_notification(data, "application/json"), (EventPayloadError,),
                            (json.dumps({"events": [{"id": "e1", "action": "push", **_ACR_DATA}]}).encode(),
                             json.dumps({"id": "e2", "action": "push", **_ACR_DATA}).encode())),
    "manifest": Target(lambda data: parse_manifest(data, None), (ManifestError,), (json.dumps(_INDEX).encode(),)),
    "config": Target(platform_from_config, (ManifestError,),
                     (b'{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1"}',)),
    "oci-platform": Target(_oci_platform, (PlatformError,), (b'{"os":"linux","architecture":"arm64"}',)),
    "platform": Target(lambda data: parse_platform(_text(data)), (PlatformError,), (b"linux/arm/v7",)),
    "platform-pattern": Target(_platform_pattern, (PlatformError,), (b"linux/arm*\nlinux/arm/v6",)),
    "reference": Target(lambda data: parse_reference(_text(data)), (ReferenceError,),
                        (b"127.0.0.1:5000/team/app:1.0@" + _DIGEST.encode(),)),
    "glob": Target(_glob, (ValueError,), (b"dockerhub/**/*-app\ndockerhub/library/my-app",)),
    "policy": Target(lambda data: parse_policy(_text(data), source="fuzz"), (PolicyError,), (_POLICY,)),
    "chart": Target(read_chart_archive, (ChartError,), (_chart_seed(),)),
}


def _run(target: Target) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        try:
            target.call(data)
        except target.documented:
            pass

    return one_input


def _seed(corpus: Path, target: Target) -> None:
    if corpus.is_dir() and not any(corpus.iterdir()):
        for number, seed in enumerate(target.seeds):
            (corpus / f"seed-{number}").write_bytes(seed)


def main(arguments: list[str]) -> None:
    if len(arguments) < 2 or arguments[1] not in TARGETS:
        print(f"usage: {arguments[0]} TARGET [libFuzzer arguments]; targets: {', '.join(TARGETS)}", file=sys.stderr)
        raise SystemExit(0 if arguments[1:2] == ["--list"] else 2)
    target = TARGETS[arguments[1]]
    fuzzer_arguments = [arguments[0], *arguments[2:]]
    for argument in fuzzer_arguments[1:]:
        if not argument.startswith("-"):
            _seed(Path(argument), target)
    atheris.Setup(fuzzer_arguments, _run(target))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
