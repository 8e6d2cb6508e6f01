"""The copy-engine benchmark: `copy_image` against three peers, `skopeo copy --all`, `crane copy` and `regctl image
copy`, between two local registries; the same copy again, a same-registry copy (blobs mounted), and peak memory
while copying one 1 GiB layer.

    .venv/bin/python -m bench.copy_engine                        # 5 timed runs, 3 of the 1 GiB layer: about 1.5 min
    .venv/bin/python -m bench.copy_engine --runs 7 --json
    .venv/bin/python -m bench.copy_engine --skip-big             # without the 1 GiB layer

Two distribution registries (`testbed.registry.LocalRegistry`) on 127.0.0.1: source and target.
Images are built as an OCI layout with `ImageBuilder` (configs, manifests, index) and layers written here, block
by block, straight to disk: a gzip (level 0, stored blocks) of a tar holding one file of SHAKE-256 output, so
the bytes are deterministic, incompressible and never all in memory. They are pushed with our own client,
streamed from the layout's files, and the layout is deleted once pushed.

The peers: skopeo is the system's (/usr/bin/skopeo); crane (go-containerregistry) and regctl (regclient) are the
builds pinned in scripts/tools.lock (`testbed.tools.tool_path`). A peer that is not built is left out, with the
reason printed (`bash scripts/setup` builds it where Go is installed); the rest still runs. crane and regctl run
with a private, empty HOME, DOCKER_CONFIG, XDG_CONFIG_HOME and XDG_RUNTIME_DIR (REGISTRY_AUTH_FILE unset), so they
never read the user's credentials or configuration; regctl's config (REGCTL_CONFIG, in that private folder) is
written once, untimed, by `regctl registry set --tls disabled HOST` for both registries.

Each timed run (figures printed: the median of the runs):
- A 4-platform OCI index, 5 layers of 10 MiB per platform (about 210 MB), with a seed of its own, so its
  blobs are unknown to the target registry and to skopeo's blob-info cache: nothing can be skipped or mounted.
- Each tool copies it to a fresh target repository of its own, timed from spawn to exit for the peers:
  `skopeo copy --all docker://SRC docker://DST --src-tls-verify=false --dest-tls-verify=false`,
  `crane copy SRC DST --insecure` (every platform of an index is crane's default), `regctl image copy SRC DST`
  (the whole index is regctl's default; no `--referrers`: the image has none and plain copies are compared);
  copy_image: `copy_image(...)` with default `parallel`, timed with the clients' creation. The order of the four
  is a row of a balanced Latin square (Williams design), one row per run: over 4 runs each tool is once in each
  position and follows each other tool once (run 5 repeats run 1's order). Every result must have the source
  index's digest, and the target registry must have written at least the blobs' bytes meanwhile
  (/proc/<pid>/io), so no tool mounted or skipped anything.
  Ratios copy_image / skopeo, / crane and / regctl are computed per run; the medians of those are reported. Also
  the CPU time of each tool (a peer's from `os.wait4`; copy_image's is the benchmark process's own) and of both
  registries meanwhile.
- Again: the same `copy_image` once more (fresh clients): everything is present, only HEADs and the tag.
- Mount: `copy_image` from the source repository to another repository of the source registry.
- Fixed cost: every tool copies a one-layer 1 MiB image of its own (in the run's order), so the ratios can be
  read as throughput.

The 1 GiB layer (unless --skip-big): a single image with one 1 GiB layer is pushed once; each run is a child
Python process that does only `copy_image` of it to a fresh target repository and, last, reads its own peak
RSS (`VmHWM` in /proc/self/status: the high-water mark of the memory map exec gave it). `ru_maxrss` from
`os.wait4` is no good here: subprocess spawns with vfork, and the kernel carries the parent's high-water mark
over the exec, so it reports at least the benchmark's own RSS. The floor is the same child doing nothing but
importing the modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import TypeVar

from bench.common import cpu_seconds, machine
from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import DEFAULT_PARALLEL, CopyResult, copy_image
from testbed.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    ImageBuilder,
    canonical_json,
    platform_json,
)
from testbed.push import SKOPEO_BINARY
from testbed.registry import LocalRegistry
from testbed.tools import missing_tool_message, pinned_version, tool_path

MIB = 1024 * 1024
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/ppc64le")
LAYERS_PER_PLATFORM = 5
LAYER_PAYLOAD_BYTES = 10 * MIB
BIG_LAYER_PAYLOAD_BYTES = 1024 * MIB
WRITE_BLOCK_BYTES = 1 * MIB
PUSH_THREADS = 4
SOURCE_REPOSITORY = "bench/app"
BIG_REPOSITORY = "bench/big"
BIG_TAG = "1gib"
CHILD_TIMEOUT_SECONDS = 600.0
VERSION_TIMEOUT_SECONDS = 10.0
# What a Go peer must not read from the user: its variables are replaced by folders of a private, empty home.
PRIVATE_VARIABLES = (
    "HOME", "DOCKER_CONFIG", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "REGCTL_CONFIG", "REGISTRY_AUTH_FILE",
)

T = TypeVar("T")

# The tools of a timed run: copy_image and its peers. `copy` is copy_image's prefix in the figures' names.
COPY_IMAGE = "copy_image"
PEERS = ("skopeo", "crane", "regctl")
GO_PEERS = ("crane", "regctl")  # built from scripts/tools.lock (testbed.tools); skopeo is the system's
TOOL_ORDER = ("skopeo", COPY_IMAGE, "crane", "regctl")  # run 1's order; balanced_order permutes it per run
FIELD_PREFIX = {COPY_IMAGE: "copy", "skopeo": "skopeo", "crane": "crane", "regctl": "regctl"}
PEER_LABEL = {"skopeo": "skopeo copy --all", "crane": "crane copy --insecure", "regctl": "regctl image copy"}

TARGET_RATIO_SKOPEO = 0.7
TARGET_RATIO_CRANE = 1.0
TARGET_AGAIN_SECONDS = 0.3
TARGET_MOUNT_BYTES_UPLOADED = 0
TARGET_PEAK_RSS_BYTES = 150 * 1000 * 1000

# What the 1 GiB child runs: `floor` stops after the imports, `copy HOST REPO REF HOST REPO` copies and prints
# what it did. Kept to the modules a copy needs, so the RSS is the copy's, not the benchmark's.
CHILD_SCRIPT = """\
import json, sys, time
from dataclasses import asdict
from importer.app.copying import copy_image
from importer.adapters.registry.oci import OciRegistry
report = {}
if sys.argv[1] == "copy":
    source_host, repository, reference, target_host, target_repository = sys.argv[2:7]
    started = time.perf_counter()
    with OciRegistry(source_host) as source, OciRegistry(target_host) as target:
        result = copy_image(source, repository, reference, target, target_repository, reference)
    report = {"seconds": time.perf_counter() - started, "digest": result.digest, **asdict(result.stats)}
with open("/proc/self/status") as status:
    report["vm_hwm_bytes"] = int(status.read().split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps(report))
"""


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it claims: a push, a copy or a check of what was copied went wrong."""


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """An image or index in the layout: its descriptor, and the blobs (configs and layers) it references."""

    top: Descriptor
    manifests: tuple[Descriptor, ...]  # child manifests of an index, pushed by digest; empty for one image
    blobs: tuple[Descriptor, ...]

    @property
    def blob_bytes(self) -> int:
        return sum(blob.size for blob in self.blobs)


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A child process run to its end: exit code, output, wall time, and the CPU time the kernel counted for it."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One timed run of the 4-platform index; times and CPU in seconds. A peer that is not built has None."""

    order: str  # the tools in the order they copied, comma-separated
    skopeo_seconds: float
    copy_seconds: float
    crane_seconds: float | None
    regctl_seconds: float | None
    ratio_skopeo: float  # copy_image / skopeo, this run
    ratio_crane: float | None
    ratio_regctl: float | None
    skopeo_cpu_seconds: float
    copy_cpu_seconds: float
    crane_cpu_seconds: float | None
    regctl_cpu_seconds: float | None
    registries_cpu_during_skopeo: float
    registries_cpu_during_copy: float
    registries_cpu_during_crane: float | None
    registries_cpu_during_regctl: float | None
    again_seconds: float
    again_requests: int
    mount_seconds: float
    blobs_mounted: int
    mount_bytes_uploaded: int
    small_skopeo_seconds: float
    small_copy_seconds: float
    small_crane_seconds: float | None
    small_regctl_seconds: float | None
    load_average: float


@dataclass(frozen=True, slots=True)
class BigRunFigures:
    """One copy of the 1 GiB layer by a child process that does only that."""

    seconds: float
    peak_rss_bytes: int
    cpu_seconds: float
    bytes_uploaded: int


def median_of(runs: Sequence[RunFigures] | Sequence[BigRunFigures]) -> dict[str, float | None]:
    """Each numeric figure's median over the runs (so the result need not be one of the runs); None for a figure
    no run has (a peer that is not built). Text figures (the order) have no median and are left out."""
    medians: dict[str, float | None] = {}
    for field in fields(runs[0]):
        values = [getattr(run, field.name) for run in runs]
        if any(isinstance(value, str) for value in values):
            continue
        present = [value for value in values if value is not None]
        medians[field.name] = statistics.median(present) if present else None
    return medians


# -- images on disk, block by block -----------------------------------------------------------------------


def pseudo_random_blocks(label: str, size: int) -> Iterator[bytes]:
    """`size` incompressible bytes derived from `label` only, WRITE_BLOCK_BYTES at a time (SHAKE-256 per block)."""
    for number, offset in enumerate(range(0, size, WRITE_BLOCK_BYTES)):
        yield hashlib.shake_256(f"{label}#{number}".encode()).digest(min(WRITE_BLOCK_BYTES, size - offset))


class _LayerFile:
    """A gzipped tar being written to a file: hashes the tar (diff id) and the gzip (blob digest) as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._compressor = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # level 0: gzip of stored blocks
        self._tar_hash = hashlib.sha256()
        self._blob_hash = hashlib.sha256()
        self.size = 0

    def write(self, tar_bytes: bytes) -> None:
        self._tar_hash.update(tar_bytes)
        self._emit(self._compressor.compress(tar_bytes))

    def finish(self) -> tuple[str, str]:
        """Flush and close; (blob digest, diff id)."""
        self._emit(self._compressor.flush())
        self._file.close()
        return f"sha256:{self._blob_hash.hexdigest()}", f"sha256:{self._tar_hash.hexdigest()}"

    def _emit(self, compressed: bytes) -> None:
        if compressed:
            self._blob_hash.update(compressed)
            self._file.write(compressed)
            self.size += len(compressed)


def write_layer(builder: ImageBuilder, label: str, payload_bytes: int) -> tuple[Descriptor, str]:
    """A tar+gzip layer holding one file of `payload_bytes` bytes derived from `label`, written into the layout
    without holding it in memory; returns its descriptor and its diff id."""
    entry = tarfile.TarInfo(f"platform-guard/{hashlib.sha256(label.encode()).hexdigest()[:16]}.bin")
    entry.size = payload_bytes
    entry.mode = 0o644
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    partial = builder.blobs_dir / f".partial-{os.getpid()}-{hashlib.sha256(label.encode()).hexdigest()[:16]}"
    layer = _LayerFile(partial)
    try:
        layer.write(entry.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
        for block in pseudo_random_blocks(label, payload_bytes):
            layer.write(block)
        padding = -payload_bytes % tarfile.BLOCKSIZE
        layer.write(bytes(padding + 2 * tarfile.BLOCKSIZE))  # pad the file, then the two zero blocks ending a tar
        digest, diff_id = layer.finish()
        partial.replace(builder.blobs_dir / digest.removeprefix("sha256:"))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Descriptor(OCI_LAYER, digest, layer.size), diff_id


def build_image(builder: ImageBuilder, platform_name: str, *, seed: str, layers: int, payload_bytes: int) -> BuiltImage:
    """An OCI image for `platform_name` with `layers` incompressible layers, ready to go into an index."""
    written = [
        write_layer(builder, f"{seed}|{platform_name}|layer {number}", payload_bytes) for number in range(layers)
    ]
    platform_fields = platform_json(platform_name)
    config_document = {
        **{key: platform_fields[key] for key in ("architecture", "os", "variant") if key in platform_fields},
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in written]},
    }
    config = builder.add_blob(canonical_json(config_document), OCI_CONFIG)
    layer_descriptors = [descriptor for descriptor, _ in written]
    manifest_document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layer_descriptors],
    }
    manifest = builder.add_blob(canonical_json(manifest_document), OCI_MANIFEST)
    return BuiltImage(dataclasses.replace(manifest, platform=platform_fields), (), (config, *layer_descriptors))


def build_four_platform_index(builder: ImageBuilder, *, seed: str) -> BuiltImage:
    """The 4-platform index of the timed runs: PLATFORMS, LAYERS_PER_PLATFORM layers of LAYER_PAYLOAD_BYTES each."""
    images = [
        build_image(builder, name, seed=seed, layers=LAYERS_PER_PLATFORM, payload_bytes=LAYER_PAYLOAD_BYTES)
        for name in PLATFORMS
    ]
    index = builder.index([image.top for image in images])
    blobs = tuple(blob for image in images for blob in image.blobs)
    return BuiltImage(index, tuple(image.top for image in images), blobs)


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(WRITE_BLOCK_BYTES):
            yield block


def push_built(client: OciRegistry, builder: ImageBuilder, image: BuiltImage, repository: str, tag: str) -> None:
    """Blobs streamed from the layout's files, then child manifests by digest, then the top one under `tag`."""

    def upload(blob: Descriptor) -> None:
        path = builder.blobs_dir / blob.hex
        client.upload_blob(repository, blob.digest, _file_blocks(path), size=blob.size)

    with ThreadPoolExecutor(PUSH_THREADS, thread_name_prefix="bench-push") as pool:
        list(pool.map(upload, image.blobs))
    for manifest in image.manifests:
        client.put_manifest(repository, manifest.digest, builder.blob(manifest.digest), manifest.media_type)
    stored = client.put_manifest(repository, tag, builder.blob(image.top.digest), image.top.media_type)
    if stored != image.top.digest:
        raise BenchmarkError(f"{client.host}/{repository}:{tag} was stored as {stored}, not as {image.top.digest}")


def build_and_push(
    registry: LocalRegistry, layout: Path, repository: str, tag: str, build: Callable[[ImageBuilder], BuiltImage]
) -> BuiltImage:
    """Build into a fresh layout at `layout`, push it, and delete the layout."""
    try:
        builder = ImageBuilder(layout)
        image = build(builder)
        with OciRegistry(registry.host) as client:
            push_built(client, builder, image, repository, tag)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    return image


# -- processes ------------------------------------------------------------------------------------------------


def run_child(command: Sequence[str], *, environment: Mapping[str, str] | None = None) -> ChildRun:
    """Run `command` to its end; wall time from spawn to exit, its own CPU time from `os.wait4`.

    Killed after CHILD_TIMEOUT_SECONDS (BenchmarkError then).
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=environment)
        deadline = threading.Timer(CHILD_TIMEOUT_SECONDS, process.kill)
        deadline.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            deadline.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; tell Popen so it does not wait
        if seconds >= CHILD_TIMEOUT_SECONDS:
            raise BenchmarkError(f"{' '.join(command[:3])} … did not finish within {CHILD_TIMEOUT_SECONDS:g} s")
        stdout.seek(0)
        stderr.seek(0)
        return ChildRun(
            exit_code=process.returncode,
            stdout=stdout.read(),
            stderr=stderr.read(),
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
        )




def bytes_written(pid: int) -> int:
    """Bytes a process has passed to write calls so far (files and sockets alike), from /proc/<pid>/io."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise BenchmarkError(f"/proc/{pid}/io has no wchar line")


@dataclass(frozen=True, slots=True)
class RegistryUse:
    """What the registries did during one copy: CPU seconds of both, bytes the target wrote."""

    cpu_seconds: float
    target_bytes_written: int


class _RegistryMeter:
    """Samples both registries' CPU time and the target's written bytes around a copy.

    The written bytes prove a copy uploaded the blobs: a mounted or skipped blob writes only a link file, so a
    target that wrote less than the blobs' size did not receive them all.
    """

    def __init__(self, source: LocalRegistry, target: LocalRegistry) -> None:
        self._pids = (source.pid, target.pid)

    def measure(self, copy: Callable[[], T]) -> tuple[T, RegistryUse]:
        cpu_before, written_before = self._sample()
        outcome = copy()
        cpu_after, written_after = self._sample()
        return outcome, RegistryUse(cpu_after - cpu_before, written_after - written_before)

    def _sample(self) -> tuple[float, int]:
        return sum(cpu_seconds(pid) for pid in self._pids), bytes_written(self._pids[1])


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer tool, ready to copy registry to registry: its binary, its version, the environment it runs in."""

    name: str
    binary: str
    version: str
    environment: Mapping[str, str] | None  # None: the benchmark's own (skopeo, as a user would run it)

    def command(self, source_host: str, source_ref: str, target_host: str, target_ref: str) -> list[str]:
        """The copy exactly as a user would type it for two plain-HTTP registries."""
        source, target = f"{source_host}/{source_ref}", f"{target_host}/{target_ref}"
        if self.name == "skopeo":
            return [self.binary, "copy", "--all", f"docker://{source}", f"docker://{target}",
                    "--src-tls-verify=false", "--dest-tls-verify=false"]
        if self.name == "crane":
            return [self.binary, "copy", source, target, "--insecure"]
        if self.name == "regctl":  # plain HTTP comes from its config (`registry set --tls disabled`)
            return [self.binary, "image", "copy", source, target]
        raise ValueError(f"no command for peer {self.name}")

    def copy(self, source: LocalRegistry, source_ref: str, target: LocalRegistry, target_ref: str) -> ChildRun:
        """Run the copy to its end; BenchmarkError if it fails."""
        command = self.command(source.host, source_ref, target.host, target_ref)
        finished = run_child(command, environment=self.environment)
        if finished.exit_code != 0:
            raise BenchmarkError(
                f"{' '.join(command)} failed (exit {finished.exit_code}): {finished.stderr.decode()[-2000:]}"
            )
        return finished


def private_environment(home: Path) -> dict[str, str]:
    """The benchmark's environment with a private, empty home for the Go peers: no credentials of the user's
    (~/.docker/config.json, containers/auth.json), no regctl config of theirs."""
    folders = {"HOME": home, "DOCKER_CONFIG": home / ".docker", "XDG_CONFIG_HOME": home / ".config",
               "XDG_RUNTIME_DIR": home / "run"}
    regctl_config = home / ".regctl" / "config.json"
    for folder in (*folders.values(), regctl_config.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    environment = {name: value for name, value in os.environ.items() if name not in PRIVATE_VARIABLES}
    environment.update({name: str(folder) for name, folder in folders.items()})
    environment["REGCTL_CONFIG"] = str(regctl_config)
    return environment


def _run_checked(command: Sequence[str], environment: Mapping[str, str] | None) -> str:
    """Run a short command (a version, a config change) and return its output; BenchmarkError if it fails."""
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=VERSION_TIMEOUT_SECONDS, env=environment, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchmarkError(f"{' '.join(command)} failed: {error}") from error
    if finished.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed (exit {finished.returncode}): {finished.stderr[-2000:]}")
    return finished.stdout


def peer_version(name: str, binary: str, environment: Mapping[str, str] | None) -> str:
    """What the tool says its version is: `skopeo --version`, `crane version`, `regctl version` (its VCSTag)."""
    if name == "skopeo":
        return _run_checked([binary, "--version"], environment).strip().removeprefix("skopeo version ")
    if name == "crane":
        return _run_checked([binary, "version"], environment).strip()
    output = _run_checked([binary, "version"], environment)
    tags = [line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("VCSTag:")]
    return tags[0] if tags else output.strip()


def prepare_peers(
    workdir: Path, registries: Sequence[LocalRegistry]
) -> tuple[dict[str, Peer], dict[str, str]]:
    """The peers that can run (by name, in PEERS order) and, for each that cannot, why and how to get it.

    crane and regctl get a private environment under `workdir`; regctl's config there is told, once and untimed,
    that `registries` speak plain HTTP.
    """
    peers: dict[str, Peer] = {}
    missing: dict[str, str] = {}
    environment = private_environment(workdir / "peer-home")
    for name in PEERS:
        if name == "skopeo":
            peers[name] = Peer(name, SKOPEO_BINARY, peer_version(name, SKOPEO_BINARY, None), None)
            continue
        path = tool_path(name)
        if path is None:
            missing[name] = f"{missing_tool_message(name)}; measured without it"
            continue
        peers[name] = Peer(name, str(path), peer_version(name, str(path), environment), environment)
    if "regctl" in peers:
        for registry in registries:
            _run_checked([peers["regctl"].binary, "registry", "set", registry.host, "--tls", "disabled"], environment)
    return peers, missing


def balanced_order(number: int, tools: Sequence[str]) -> tuple[str, ...]:
    """The order of run `number`: row (number - 1) mod n of a balanced Latin square (Williams design) of `tools`.

    Its first row is 0, 1, n-1, 2, n-2, ...; each next row adds 1 to every entry (mod n). Over n runs every tool
    is once in every position; for even n every tool also directly follows every other tool exactly once, so
    none always comes after the same one (whose traces in page cache or registry state it might inherit).
    """
    count = len(tools)
    first = [0]
    low, high = 1, count - 1
    while len(first) < count:
        if len(first) % 2 == 1:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    shift = (number - 1) % count
    return tuple(tools[(index + shift) % count] for index in first)


def timed_copy(
    source: LocalRegistry, source_repository: str, reference: str, target: LocalRegistry, target_repository: str
) -> tuple[CopyResult, float, float, int]:
    """`copy_image` with default parallel and fresh clients: (result, seconds, CPU seconds, requests made)."""
    cpu_before = time.process_time()
    started = time.perf_counter()
    with OciRegistry(source.host) as source_client, OciRegistry(target.host) as target_client:
        result = copy_image(source_client, source_repository, reference, target_client, target_repository, reference)
        requests = source_client.requests_made + target_client.requests_made
    return result, time.perf_counter() - started, time.process_time() - cpu_before, requests


def mounted_copy(registry: LocalRegistry, reference: str, target_repository: str) -> tuple[CopyResult, float]:
    """`copy_image` to another repository of the same registry, with one client: (result, seconds)."""
    started = time.perf_counter()
    with OciRegistry(registry.host) as client:
        result = copy_image(client, SOURCE_REPOSITORY, reference, client, target_repository, reference)
    return result, time.perf_counter() - started


def _check_copy(result: CopyResult, image: BuiltImage, where: str, **expected: int) -> None:
    stats = asdict(result.stats)
    wrong = {name: stats[name] for name, value in expected.items() if stats[name] != value}
    if result.digest != image.top.digest or wrong:
        raise BenchmarkError(
            f"{where}: copied as {result.digest} (expected {image.top.digest}), stats {stats}, expected {expected}"
        )


def _check_target_digest(registry: LocalRegistry, repository: str, tag: str, expected: str) -> None:
    with OciRegistry(registry.host) as client:
        head = client.head_manifest(repository, tag)
    if head is None or head.digest != expected:
        raise BenchmarkError(f"{registry.host}/{repository}:{tag} is {head and head.digest}, expected {expected}")


# -- the runs ---------------------------------------------------------------------------------------------------


def warm_up(source: LocalRegistry, target: LocalRegistry, workdir: Path, peers: Mapping[str, Peer]) -> None:
    """One small copy by each tool, so none pays for cold binaries, imports or registry caches."""
    image = build_and_push(
        source, workdir / "layout-warm-up", SOURCE_REPOSITORY, "warm-up",
        lambda builder: build_image(builder, "linux/amd64", seed="warm-up", layers=2, payload_bytes=MIB),
    )
    for name, peer in peers.items():
        peer.copy(source, f"{SOURCE_REPOSITORY}:warm-up", target, f"bench/warm-up-{name}:warm-up")
        _check_target_digest(target, f"bench/warm-up-{name}", "warm-up", image.top.digest)
    result, *_ = timed_copy(source, SOURCE_REPOSITORY, "warm-up", target, "bench/warm-up-copy")
    _check_copy(result, image, "warm-up copy")


def fixed_costs(
    number: int, order: Sequence[str], peers: Mapping[str, Peer], source: LocalRegistry, target: LocalRegistry,
    workdir: Path,
) -> dict[str, float]:
    """Seconds of each tool, in `order`, for a one-layer 1 MiB image: what each pays whatever the size."""
    tag = f"small-{number}"
    image = build_and_push(
        source, workdir / f"layout-{tag}", SOURCE_REPOSITORY, tag,
        lambda builder: build_image(builder, "linux/amd64", seed=tag, layers=1, payload_bytes=MIB),
    )
    seconds: dict[str, float] = {}
    for name in order:
        if name == COPY_IMAGE:
            result, seconds[name], _, _ = timed_copy(
                source, SOURCE_REPOSITORY, tag, target, f"bench/small-copy-{number}"
            )
            _check_copy(result, image, f"run {number}: copy_image of the small image", bytes_uploaded=image.blob_bytes)
        else:
            repository = f"bench/small-{name}-{number}"
            seconds[name] = peers[name].copy(source, f"{SOURCE_REPOSITORY}:{tag}", target, f"{repository}:{tag}").seconds
            _check_target_digest(target, repository, tag, image.top.digest)
    return seconds


def timed_run(
    number: int, source: LocalRegistry, target: LocalRegistry, workdir: Path, peers: Mapping[str, Peer]
) -> tuple[RunFigures, int]:
    """One run of the 4-platform index (see the module docstring); returns its figures and the bytes copied."""
    tag = f"run-{number}"
    image = build_and_push(
        source, workdir / f"layout-{tag}", SOURCE_REPOSITORY, tag,
        lambda builder: build_four_platform_index(builder, seed=tag),
    )
    meter = _RegistryMeter(source, target)
    load_average = os.getloadavg()[0]
    order = balanced_order(number, [name for name in TOOL_ORDER if name == COPY_IMAGE or name in peers])
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    registry_use: dict[str, RegistryUse] = {}
    result: CopyResult | None = None
    for name in order:
        if name == COPY_IMAGE:
            (result, seconds[name], cpu[name], _), registry_use[name] = meter.measure(
                lambda: timed_copy(source, SOURCE_REPOSITORY, tag, target, f"bench/copy-{number}")
            )
        else:
            finished, registry_use[name] = meter.measure(
                partial(peers[name].copy, source, f"{SOURCE_REPOSITORY}:{tag}", target, f"bench/{name}-{number}:{tag}")
            )
            seconds[name], cpu[name] = finished.seconds, finished.cpu_seconds
            _check_target_digest(target, f"bench/{name}-{number}", tag, image.top.digest)
    assert result is not None
    _check_copy(result, image, f"run {number}: copy_image", blobs_uploaded=len(image.blobs),
                bytes_uploaded=image.blob_bytes, blobs_skipped=0, blobs_mounted=0)
    for name, use in registry_use.items():
        if use.target_bytes_written < image.blob_bytes:
            raise BenchmarkError(
                f"run {number}: during the {name} copy the target registry wrote {use.target_bytes_written} bytes, "
                f"less than the {image.blob_bytes} bytes of blobs: not every blob was uploaded"
            )
    again, again_seconds, _, again_requests = timed_copy(
        source, SOURCE_REPOSITORY, tag, target, f"bench/copy-{number}"
    )
    _check_copy(again, image, f"run {number}: copy_image again", blobs_skipped=len(image.blobs), bytes_uploaded=0)
    mounted, mount_seconds = mounted_copy(source, tag, f"bench/mounted-{number}")
    _check_copy(mounted, image, f"run {number}: same-registry copy")
    small = fixed_costs(number, order, peers, source, target, workdir)

    def ratio(peer: str) -> float | None:
        return seconds[COPY_IMAGE] / seconds[peer] if peer in seconds else None

    def registries_cpu(name: str) -> float | None:
        return registry_use[name].cpu_seconds if name in registry_use else None

    return RunFigures(
        order=",".join(order),
        skopeo_seconds=seconds["skopeo"],
        copy_seconds=seconds[COPY_IMAGE],
        crane_seconds=seconds.get("crane"),
        regctl_seconds=seconds.get("regctl"),
        ratio_skopeo=seconds[COPY_IMAGE] / seconds["skopeo"],
        ratio_crane=ratio("crane"),
        ratio_regctl=ratio("regctl"),
        skopeo_cpu_seconds=cpu["skopeo"],
        copy_cpu_seconds=cpu[COPY_IMAGE],
        crane_cpu_seconds=cpu.get("crane"),
        regctl_cpu_seconds=cpu.get("regctl"),
        registries_cpu_during_skopeo=registry_use["skopeo"].cpu_seconds,
        registries_cpu_during_copy=registry_use[COPY_IMAGE].cpu_seconds,
        registries_cpu_during_crane=registries_cpu("crane"),
        registries_cpu_during_regctl=registries_cpu("regctl"),
        again_seconds=again_seconds,
        again_requests=again_requests,
        mount_seconds=mount_seconds,
        blobs_mounted=mounted.stats.blobs_mounted,
        mount_bytes_uploaded=mounted.stats.bytes_uploaded,
        small_skopeo_seconds=small["skopeo"],
        small_copy_seconds=small[COPY_IMAGE],
        small_crane_seconds=small.get("crane"),
        small_regctl_seconds=small.get("regctl"),
        load_average=load_average,
    ), image.blob_bytes


def _child_environment() -> dict[str, str]:
    source_root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}


def import_floor() -> int:
    """Peak RSS in bytes of the copy child doing nothing but importing the modules."""
    finished = run_child([sys.executable, "-c", CHILD_SCRIPT, "floor"], environment=_child_environment())
    if finished.exit_code != 0:
        raise BenchmarkError(f"the import-only child failed (exit {finished.exit_code}): {finished.stderr.decode()}")
    return int(json.loads(finished.stdout)["vm_hwm_bytes"])


def big_run(number: int, source: LocalRegistry, target: LocalRegistry, image: BuiltImage) -> BigRunFigures:
    """One child process copying the 1 GiB image to a fresh repository of the target registry."""
    target_repository = f"bench/big-{number}"
    command = [sys.executable, "-c", CHILD_SCRIPT, "copy", source.host, BIG_REPOSITORY, BIG_TAG, target.host,
               target_repository]
    finished = run_child(command, environment=_child_environment())
    if finished.exit_code != 0:
        raise BenchmarkError(
            f"1 GiB copy {number} failed (exit {finished.exit_code}): {finished.stderr.decode()[-2000:]}"
        )
    reported = json.loads(finished.stdout)
    if reported["digest"] != image.top.digest or reported["bytes_uploaded"] != image.blob_bytes:
        raise BenchmarkError(
            f"1 GiB copy {number} did something else than a full copy of {image.top.digest}: {reported}"
        )
    return BigRunFigures(
        seconds=reported["seconds"],
        peak_rss_bytes=reported["vm_hwm_bytes"],
        cpu_seconds=finished.cpu_seconds,
        bytes_uploaded=reported["bytes_uploaded"],
    )


def run_benchmark(*, runs: int, big_runs: int, progress: Callable[[str], None]) -> dict[str, object]:
    """Set up, measure, clean up; every figure, the medians and the verdicts."""
    workdir = Path(tempfile.mkdtemp(prefix="platform-guard-copy-bench-"))
    per_run: list[RunFigures] = []
    big: list[BigRunFigures] = []
    floor_rss_bytes = 0
    index_bytes = 0
    try:
        with LocalRegistry(workdir / "source") as source, LocalRegistry(workdir / "target") as target:
            peers, missing = prepare_peers(workdir, (source, target))
            tools = _tools_report(peers, missing)
            progress(_tools_line(tools))
            for message in missing.values():
                progress(f"warning: {message}")
            warm_up(source, target, workdir, peers)
            for number in range(1, runs + 1):
                figures, index_bytes = timed_run(number, source, target, workdir, peers)
                per_run.append(figures)
                progress(f"run {number}/{runs}: {_run_line(asdict(figures))}")
            if big_runs:
                started = time.monotonic()
                big_image = build_and_push(
                    source, workdir / "layout-big", BIG_REPOSITORY, BIG_TAG,
                    lambda builder: build_image(builder, "linux/amd64", seed="big", layers=1,
                                                payload_bytes=BIG_LAYER_PAYLOAD_BYTES),
                )
                progress(f"1 GiB image built and pushed in {time.monotonic() - started:.0f} s")
                floor_rss_bytes = import_floor()
                for number in range(1, big_runs + 1):
                    big.append(big_run(number, source, target, big_image))
                    progress(f"1 GiB run {number}/{big_runs}: {_big_line(asdict(big[-1]))}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = median_of(per_run)
    crane_ratio = median["ratio_crane"]
    targets: dict[str, dict[str, object]] = {
        "ratio_skopeo": {"target": TARGET_RATIO_SKOPEO, "met": median["ratio_skopeo"] <= TARGET_RATIO_SKOPEO},
        "ratio_crane": {  # None: crane is not built, so the target was not measured
            "target": TARGET_RATIO_CRANE, "met": None if crane_ratio is None else crane_ratio <= TARGET_RATIO_CRANE,
        },
        "again_seconds": {"target": TARGET_AGAIN_SECONDS, "met": median["again_seconds"] <= TARGET_AGAIN_SECONDS},
        "mount_bytes_uploaded": {  # every run, not the median: one uploaded byte is a miss
            "target": TARGET_MOUNT_BYTES_UPLOADED,
            "met": max(run.mount_bytes_uploaded for run in per_run) <= TARGET_MOUNT_BYTES_UPLOADED,
        },
    }
    report: dict[str, object] = {
        "benchmark": "copy_engine",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python", "-m", "bench.copy_engine", *sys.argv[1:]]),
        "machine": machine(),
        "parallel": DEFAULT_PARALLEL,
        "tools": tools,
        "index": {"platforms": list(PLATFORMS), "layers_per_platform": LAYERS_PER_PLATFORM,
                  "layer_payload_bytes": LAYER_PAYLOAD_BYTES, "blob_bytes": index_bytes},
        "runs": runs,
        "per_run": [asdict(run) for run in per_run],
        "median": median,
        "targets": targets,
    }
    if big:
        highest_rss = max(run.peak_rss_bytes for run in big)
        targets["peak_rss_bytes"] = {"target": TARGET_PEAK_RSS_BYTES, "met": highest_rss <= TARGET_PEAK_RSS_BYTES}
        report["big"] = {
            "layer_payload_bytes": BIG_LAYER_PAYLOAD_BYTES,
            "runs": big_runs,
            "per_run": [asdict(run) for run in big],
            "median": median_of(big),
            "highest_peak_rss_bytes": highest_rss,
            "import_floor_rss_bytes": floor_rss_bytes,
        }
    return report


def _tools_report(peers: Mapping[str, Peer], missing: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Each peer's binary, version (and pin, for the Go tools) and command, or why it is missing."""
    tools: dict[str, dict[str, object]] = {}
    for name in PEERS:
        entry: dict[str, object] = {"pinned": pinned_version(name)} if name in GO_PEERS else {}
        if name in peers:
            peer = peers[name]
            command = peer.command("SRC_HOST", "REPO:TAG", "DST_HOST", "REPO:TAG")
            entry.update(binary=peer.binary, version=peer.version,
                         command=" ".join([name, *command[1:]]), private_environment=peer.environment is not None)
        else:
            entry["missing"] = missing[name]
        tools[name] = entry
    return tools


# -- output ---------------------------------------------------------------------------------------------------


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "MISSED"


def _megabytes(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def _seconds(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tools_line(tools: Mapping[str, Mapping[str, object]]) -> str:
    described = []
    for name, entry in tools.items():
        if "missing" in entry:
            described.append(f"{name} MISSING")
        elif "pinned" in entry:
            described.append(f"{name} {entry['version']} (`{name} version`; pinned {entry['pinned']})")
        else:
            described.append(f"{name} {entry['version']} (`{name} --version`)")
    return "peers: " + ", ".join(described)


def _run_line(run: Mapping[str, object]) -> str:
    order = str(run["order"]).split(",")
    seconds = ", ".join(f"{name} {_seconds(run[FIELD_PREFIX[name] + '_seconds'])} s" for name in order)
    ratios = ", ".join(
        f"/ {peer} {_seconds(run['ratio_' + peer])}" for peer in PEERS if run[f"ratio_{peer}"] is not None
    )
    small = ", ".join(f"{name} {_seconds(run['small_' + FIELD_PREFIX[name] + '_seconds'])} s" for name in order)
    return (
        f"{seconds}; copy_image {ratios}; "
        f"again {run['again_seconds'] * 1000:.0f} ms ({run['again_requests']} requests); "
        f"mount {run['mount_seconds'] * 1000:.0f} ms, {run['blobs_mounted']} mounted, "
        f"{run['mount_bytes_uploaded']} bytes uploaded; 1 MiB image: {small}; load {run['load_average']:.1f}"
    )


def _big_line(run: Mapping[str, float]) -> str:
    return (
        f"{run['seconds']:.1f} s ({run['bytes_uploaded'] / run['seconds'] / 1e6:.0f} MB/s), "
        f"peak RSS {_megabytes(run['peak_rss_bytes'])}, CPU {run['cpu_seconds']:.1f} s"
    )


def format_report(report: Mapping[str, object]) -> str:
    """The report as a table: medians of runs, the targets, each run; then the 1 GiB layer; then the machine."""
    median = report["median"]
    targets = report["targets"]
    index = report["index"]
    tools = report["tools"]
    per_run = report["per_run"]
    assert isinstance(median, dict) and isinstance(targets, dict) and isinstance(index, dict)
    assert isinstance(tools, dict) and isinstance(per_run, list)
    met = {name: _verdict(verdict["met"]) for name, verdict in targets.items()}
    lines = [
        (
            f"copy engine: {len(index['platforms'])}-platform index, {index['layers_per_platform']} layers per "
            f"platform, {_megabytes(index['blob_bytes'])} of blobs; copy_image parallel={report['parallel']}; "
            f"median of {report['runs']} runs"
        ),
        _tools_line(tools),
        *(f"  {name}: {entry['missing']}" for name, entry in tools.items() if "missing" in entry),
        "",
        (
            f"  {'(registry to registry)':26}{'seconds':>9}{'CPU s':>8}{'registries CPU s':>18}"
            f"{'1 MiB image s':>15}{'copy_image / it':>17}"
        ),
    ]
    ratio_targets = {"skopeo": ("ratio_skopeo", TARGET_RATIO_SKOPEO), "crane": ("ratio_crane", TARGET_RATIO_CRANE)}
    for name in (*PEERS, COPY_IMAGE):
        prefix = FIELD_PREFIX[name]
        label = PEER_LABEL.get(name, "copy_image")
        if name != COPY_IMAGE and "missing" in tools[name]:
            row = f"  {label:26}{'not built, measured without it':>67}"
        else:
            row = (
                f"  {label:26}{_seconds(median[prefix + '_seconds']):>9}"
                f"{_seconds(median[prefix + '_cpu_seconds']):>8}{_seconds(median['registries_cpu_during_' + prefix]):>18}"
                f"{_seconds(median['small_' + prefix + '_seconds']):>15}"
            )
            if name != COPY_IMAGE:
                row += f"{_seconds(median['ratio_' + name], 3):>17}"
        if name in ratio_targets:
            key, target = ratio_targets[name]
            row += f"   target <= {target:g}: {met[key]}"
        lines.append(row)
    lines += [
        "  (ratios: the median of the per-run ratios, not the ratio of the medians)",
        (
            f"  same copy again             {median['again_seconds'] * 1000:6.0f} ms "
            f"({median['again_requests']:.0f} requests)   target <= {TARGET_AGAIN_SECONDS:g} s: {met['again_seconds']}"
        ),
        (
            f"  same-registry copy          {median['mount_seconds'] * 1000:6.0f} ms, {median['blobs_mounted']:.0f} "
            f"blobs mounted, {median['mount_bytes_uploaded']:.0f} bytes uploaded   "
            f"target 0 bytes: {met['mount_bytes_uploaded']}"
        ),
        "  runs (tools in the order they copied; orders from a balanced Latin square):",
    ]
    lines += [f"    {number}. {_run_line(run)}" for number, run in enumerate(per_run, 1)]
    big = report.get("big")
    if isinstance(big, dict):
        big_median = big["median"]
        lines += [
            "",
            f"1 GiB layer, copied by a child process that does only that, median of {big['runs']} runs:",
            (
                f"  peak RSS {_megabytes(big_median['peak_rss_bytes'])} "
                f"(highest {_megabytes(big['highest_peak_rss_bytes'])}; "
                f"import-only floor {_megabytes(big['import_floor_rss_bytes'])})   "
                f"target <= {_megabytes(TARGET_PEAK_RSS_BYTES)} in every run: {met['peak_rss_bytes']}"
            ),
            f"  copy {big_median['seconds']:.1f} s, CPU {big_median['cpu_seconds']:.1f} s",
            "  runs:",
        ]
        lines += [f"    {number}. {_big_line(run)}" for number, run in enumerate(big["per_run"], 1)]
    machine_figures = report["machine"]
    assert isinstance(machine_figures, dict)
    lines += ["", "machine: " + ", ".join(f"{key} {value}" for key, value in machine_figures.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    summary = " ".join(__doc__.split("\n\n")[0].split())
    parser = argparse.ArgumentParser(prog="python -m bench.copy_engine", description=summary)
    parser.add_argument(
        "--runs", type=int, default=5, help="timed runs of the index copy; the medians are reported (default 5)"
    )
    parser.add_argument("--big-runs", type=int, default=3, help="runs of the 1 GiB layer copy (default 3)")
    parser.add_argument("--skip-big", action="store_true", help="leave out the 1 GiB layer")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.big_runs < 1:
        parser.error("--runs and --big-runs must be at least 1")
    report = run_benchmark(
        runs=args.runs,
        big_runs=0 if args.skip_big else args.big_runs,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
