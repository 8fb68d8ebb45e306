"""Memory does not grow with video length: `camerapose extract` with defaults on the same footage, 60 frames
against 600 (the courtyard clip looped), peak RSS of each run in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COURTYARD, ffmpeg, require_shared

from camerapose_cli.io.video import choose_decoder, probe

pytestmark = pytest.mark.slow

PEAK_RSS = """
import resource, sys
import camerapose_cli as cp
summary = cp.extract(sys.argv[1], sys.argv[2], force=True)
assert summary.outcomes[0].status == "done", summary.outcomes[0].error
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.fixture(scope="module")
def looped(tmp_path_factory) -> dict[int, Path]:
    require_shared(COURTYARD)
    folder = tmp_path_factory.mktemp("looped")
    ffmpeg("-stream_loop", "14", "-i", str(COURTYARD), "-c", "copy", str(folder / "600.mp4"))
    ffmpeg("-i", str(folder / "600.mp4"), "-frames:v", "60", "-c", "copy", str(folder / "60.mp4"))
    return {60: folder / "60.mp4", 600: folder / "600.mp4"}


def peak_rss_kb(video: Path, out: Path) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(video), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_extract_peak_memory_does_not_grow_with_video_length(looped, tmp_path):
    short, long = (peak_rss_kb(looped[n], tmp_path / str(n)) for n in (60, 600))
    assert long / short <= 1.10, f"peak RSS {long / 1024:.0f} MB for 600 frames against {short / 1024:.0f} MB for 60"


def test_decord_gets_only_videos_it_could_hold_whole(looped):
    short, long = probe(looped[60]), probe(looped[600])
    size = (360, 640)  # the detector input (width, height) for this 1080x1920 portrait footage at imgsz 640
    assert choose_decoder(short, size, decord_max_mb=128) == "decord"  # 60 frames: 40 MB
    assert choose_decoder(long, size, decord_max_mb=128) == "pyav"  # 600 frames: 396 MB
    assert choose_decoder(long, size, decord_max_mb=400) == "decord"
    assert choose_decoder(short, size, decord_max_mb=0) == "pyav"
