"""Write-then-rename: every output appears complete or not at all, even after SIGKILL or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PARTIAL_MARK = ".partial-"


def partial_path(final: Path) -> Path:
    """The temporary name an output is written under: hidden, beside it, tagged with our pid."""
    return final.with_name(f".{final.name}{PARTIAL_MARK}{os.getpid()}{final.suffix}")


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto `final` on success, delete it on any failure."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(root: Path) -> int:
    """Delete partial files left by runs that were killed (their pid is gone). Returns how many."""
    removed = 0
    if not root.is_dir():
        return 0
    for path in root.rglob(f".*{PARTIAL_MARK}*"):
        pid_text = path.name.rsplit(PARTIAL_MARK, 1)[1].split(".", 1)[0]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue  # another live run is writing it (or we are)
        path.unlink(missing_ok=True)
        removed += 1
    return removed
