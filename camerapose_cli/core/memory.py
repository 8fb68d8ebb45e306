"""Process-wide memory settings for long runs.

glibc raises its mmap threshold each time a large block allocated by mmap is freed (up to 32 MB), and its trim
threshold with it, so later blocks of that size come from the heap and their freed space stays in the process.
With decoding and inference interleaving blocks of many sizes, peak memory then drifts up along a video by
hundreds of MB in some runs. A fixed threshold keeps glibc from adjusting either (docs/experiments.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt parameter number, glibc's malloc.h


def fix_mmap_threshold(megabytes: float) -> bool:
    """Fix glibc's mmap threshold at `megabytes` (0: leave glibc's dynamic one). False where there is no glibc."""
    if megabytes <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # macOS, musl without mallopt, Windows
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, int(megabytes * 2**20)))
