"""Safe, in-memory reading of a chart archive: `.tgz` bytes in, the files that describe charts out.

    files = read_archive_files(tgz_bytes, "chart archive", Budget())
    files["Chart.yaml"], files.get("values.yaml"), files.get("charts/redis-1.0.0.tgz")   # paths inside the chart

The archive is never extracted: the gzip stream is decompressed in small reads and handed to `tarfile` in
stream mode, and only `Chart.yaml`, `values.yaml` and sub-charts (`charts/<sub>/…` directories and
`charts/*.tgz` archives) are kept. Every entry is checked before its data is read, and any of these refuses the
whole chart with a `ChartError` naming the archive and the entry (cut short, escaped): an absolute path, a `..`
component or a backslash; a character that is not printable in the path of a file that is kept; an entry outside
the chart's top-level directory; a symbolic or hard link, a device, fifo or sparse file; a name that appears twice;
more than `MAX_CHART_FILE_BYTES` in one entry; more than `MAX_CHART_ENTRIES` entries or `MAX_CHART_UNPACKED_BYTES`
decompressed bytes over all archives of the chart together (headers included, charged to the `Budget`); tar
extension headers (pax, GNU long names) over `MAX_TAR_HEADER_BYTES` for one entry.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from typing import Any

from importer.core.charts.limits import (
    MAX_CHART_FILE_BYTES,
    MAX_CHART_UNPACKED_BYTES,
    MAX_TAR_HEADER_BYTES,
    Budget,
)
from importer.core.charts.model import ChartError
from importer.core.excerpts import excerpt, excerpt_text

__all__ = ["read_archive_files"]

_GZIP_MAGIC = b"\x1f\x8b"
_TAR_BLOCK = tarfile.BLOCKSIZE
_READ_AHEAD = tarfile.RECORDSIZE  # tarfile's stream mode reads this much at a time, so a window may run over by it
_WANTED_FILE = re.compile(r"(?:charts/[^/]+/)*(?:Chart\.yaml|values\.yaml|charts/[^/]+\.tgz)")
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


class _GuardedStream(io.RawIOBase):
    """Decompressed tar bytes for `tarfile`, charged to the chart's budget and to the current read window.

    The window bounds what tarfile may pull for one step (the headers before an entry, or an entry's data):
    tarfile reads pax and GNU long-name headers whole, so without it one header could take the whole budget.
    """

    def __init__(self, source: gzip.GzipFile, budget: Budget, label: str) -> None:
        super().__init__()
        self._source = source
        self._budget = budget
        self._label = label
        self._window_used = 0
        self._window_limit = 0
        self._refusal = ""

    def readable(self) -> bool:
        return True

    def allow(self, size: int, refusal: str) -> None:
        """Let the next step pull `size` bytes (plus tarfile's read-ahead); past that, refuse with `refusal`."""
        self._window_used = 0
        self._window_limit = size + _READ_AHEAD
        self._refusal = refusal

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._source.read(len(buffer))
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; EOFError: truncated
            raise ChartError(f"{self._label}: broken gzip data ({excerpt_text(str(error))})") from None
        size = len(data)
        self._window_used += size
        self._budget.bytes_left -= size
        if self._budget.bytes_left < 0:
            raise ChartError(f"{self._label}: the chart unpacks to more than {MAX_CHART_UNPACKED_BYTES} bytes")
        if self._window_used > self._window_limit:
            raise ChartError(f"{self._label}: {self._refusal}")
        buffer[:size] = data
        return size


def _padded(size: int) -> int:
    return -(-size // _TAR_BLOCK) * _TAR_BLOCK


def read_archive_files(data: bytes, label: str, budget: Budget) -> dict[str, bytes]:
    """The files of one archive that describe charts, by path inside the chart directory; every entry checked."""
    if not data.startswith(_GZIP_MAGIC):
        raise ChartError(f"{label}: not a gzip archive (a chart is a .tgz)")
    stream = _GuardedStream(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"), budget, label)
    wanted: dict[str, bytes] = {}
    seen: set[str] = set()
    top: str | None = None
    too_long_headers = f"tar extension headers (pax, GNU long names) over {MAX_TAR_HEADER_BYTES} bytes"
    stream.allow(MAX_TAR_HEADER_BYTES, f"{too_long_headers} before the first entry")
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            member = archive.next()
            while member is not None:
                budget.take_entry(label, member.name)
                relative, top = _checked_path(member, label, top)
                if member.size > MAX_CHART_FILE_BYTES:
                    raise ChartError(
                        f"{label}: entry {_shown(member.name)}: {member.size} bytes is over the {MAX_CHART_FILE_BYTES} "
                        "byte limit for one file"
                    )
                if member.size > budget.bytes_left:
                    raise ChartError(
                        f"{label}: entry {_shown(member.name)}: the chart unpacks to more than "
                        f"{MAX_CHART_UNPACKED_BYTES} bytes"
                    )
                if member.isfile() and relative is not None:
                    if relative in seen:
                        raise ChartError(f"{label}: entry {_shown(member.name)} appears twice")
                    seen.add(relative)
                    if _WANTED_FILE.fullmatch(relative):
                        if not relative.isprintable():  # it would name the chart in sources and messages
                            raise ChartError(f"{label}: entry {_shown(member.name)}: a character that is not "
                                             "printable in the path of a chart file")
                        stream.allow(member.size, f"entry {_shown(member.name)}: more data than its header says")
                        content = archive.extractfile(member)
                        assert content is not None  # a regular file always has content
                        wanted[relative] = content.read()
                stream.allow(
                    _padded(member.size) + MAX_TAR_HEADER_BYTES,
                    f"{too_long_headers} after entry {_shown(member.name)}",
                )
                member = archive.next()
    except tarfile.TarError as error:
        raise ChartError(f"{label}: not a readable tar archive ({excerpt_text(str(error))})") from None
    except RecursionError:  # tarfile follows chained extension headers recursively
        raise ChartError(f"{label}: tar extension headers chained too deeply") from None
    if top is None:
        raise ChartError(f"{label}: no chart directory in the archive")
    return wanted


def _checked_path(member: tarfile.TarInfo, label: str, top: str | None) -> tuple[str | None, str | None]:
    """(path inside the chart directory, or None for a directory entry; the chart directory); refuses the rest.

    `top` is the chart directory the entries so far were in (None before the first one that names it).
    """
    name = member.name

    def refuse(problem: str) -> ChartError:
        return ChartError(f"{label}: entry {_shown(name)}: {problem}")

    if not name:
        raise refuse("empty name")
    if "\\" in name:
        raise refuse("backslash in the path")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise refuse("absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' in the path")
    if member.issym():
        raise refuse(f"symbolic link (to {_shown(member.linkname)})")
    if member.islnk():
        raise refuse(f"hard link (to {_shown(member.linkname)})")
    if member.ischr() or member.isblk():
        raise refuse("device file")
    if member.isfifo():
        raise refuse("fifo")
    if member.issparse():
        raise refuse("sparse file")
    if not (member.isfile() or member.isdir()):
        raise refuse(f"unsupported entry type {_shown(member.type)}")
    if not parts:
        if member.isdir():  # "./", as `tar -C dir .` writes it
            return None, top
        raise refuse("empty name")
    if top is None:
        if len(parts) == 1 and member.isfile():
            raise refuse("a file outside any chart directory (a chart archive holds one top-level directory)")
        top = parts[0]
    elif parts[0] != top:
        raise refuse(f"outside the chart directory {_shown(top)}")
    if len(parts) == 1:
        if member.isfile():
            raise refuse(f"a file where the chart directory {_shown(top)} should be")
        return None, top
    return "/".join(parts[1:]), top



def _shown(text: str | bytes) -> str:
    """An entry name or link target as messages quote it: `repr`, cut short (names may be 64 KiB long)."""
    return excerpt(text, 200)
