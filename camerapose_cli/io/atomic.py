"""Write-then-rename: every output appears complete or not at all, even after SIGKILL or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Collection, Iterator
from pathlib import Path

PARTIAL_MARK = ".partial-"


def writer_tag() -> str:
    """Who writes a partial file: this machine's name and this process's id, `<host>_<pid>` (workers on several
    machines can share one output folder)."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', socket.gethostname()) or 'host'}_{os.getpid()}"


def split_writer_tag(tag: str) -> tuple[str, str]:
    """(host, pid) of a writer tag; the host is "" in the pid-only tags of older runs."""
    host, _, pid = tag.rpartition("_")
    return host, pid


def partial_writer(path: Path) -> str:
    """The writer tag in a partial file's name."""
    return path.name.rsplit(PARTIAL_MARK, 1)[1].split(".", 1)[0]


def partial_path(final: Path) -> Path:
    """The temporary name an output is written under: hidden, beside it, tagged with its writer."""
    return final.with_name(f".{final.name}{PARTIAL_MARK}{writer_tag()}{final.suffix}")


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


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine is running."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(root: Path, dead_writers: Collection[str] = ()) -> int:
    """Delete partial files left by killed processes: this machine's whose pid is gone, and any machine's whose
    writer tag is in `dead_writers` (workers known to be killed). Returns how many."""
    removed = 0
    if not root.is_dir():
        return 0
    this_host, _ = split_writer_tag(writer_tag())
    for path in root.rglob(f".*{PARTIAL_MARK}*"):
        tag = partial_writer(path)
        host, pid = split_writer_tag(tag)
        if tag not in dead_writers:
            if host not in ("", this_host):
                continue  # another machine's: only it can tell whether its writer lives
            if pid.isdigit() and pid_alive(int(pid)):
                continue  # another live run is writing it (or we are)
        path.unlink(missing_ok=True)
        removed += 1
    return removed
