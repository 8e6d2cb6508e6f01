"""Named points where a test stops the worker process dead, to prove that every step of the work can be resumed.

    failpoints.arm("after-verdict")        # once at start, from PLATFORM_GUARD_FAILPOINTS (the composition root)
    failpoint("after-verdict")             # at the point: SIGKILL to this process when armed, else nothing

Test-only: production never sets PLATFORM_GUARD_FAILPOINTS, and an unarmed point costs one set lookup. A point
written `NAME=PATH` pauses instead of killing: it creates `PATH.reached`, then waits (at most PAUSE_SECONDS) until
the file PATH exists, so a test can act in the window that point opens (a push between the compare and the tag write).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS: frozenset[str] = frozenset(
    {
        "after-lease",  # a worker took a message
        "after-verdict",  # the image was judged, nothing written yet
        "after-preserve",  # the offending image was copied to the quarantine repository
        "after-blobs",  # a copy wrote every blob, no manifest yet
        "after-children",  # a copy wrote the child manifests, not the top one
        "before-tag-write",  # the tag was resolved again (compare), the write comes next
        "after-tag-write",  # the tag points at the re-imported image
        "before-quarantine-delete",  # the copy in quarantine is verified, the offender still on its tag
        "after-quarantine-delete",  # the offender was removed from the guarded repository
        "before-outcome",  # the work is done, the outcome not recorded yet
    }
)
PAUSE_SECONDS = 60.0

_kill: frozenset[str] = frozenset()
_pause: dict[str, Path] = {}


def arm(spec: str | None) -> None:
    """Arm the comma-separated points of `spec` (`NAME` kills, `NAME=PATH` pauses); ValueError naming an unknown one."""
    global _kill, _pause
    kill: set[str] = set()
    pause: dict[str, Path] = {}
    for item in (part.strip() for part in (spec or "").split(",")):
        if not item:
            continue
        name, equals, path = item.partition("=")
        if name not in POINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {', '.join(sorted(POINTS))}")
        if equals:
            pause[name] = Path(path)
        else:
            kill.add(name)
    _kill, _pause = frozenset(kill), pause


def failpoint(name: str) -> None:
    """Stop dead here if `name` is armed to kill; wait for its file if armed to pause; otherwise do nothing."""
    if name in _kill:
        os.kill(os.getpid(), signal.SIGKILL)
    gate = _pause.get(name)
    if gate is not None:
        gate.with_name(gate.name + ".reached").touch()
        deadline = time.monotonic() + PAUSE_SECONDS
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
