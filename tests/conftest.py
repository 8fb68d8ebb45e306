"""Shared fixtures: the real data in ../shared/data, small media made with the bundled ffmpeg, CLI runners."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"
COURTYARD = VIDEOS / "courtyard_dribble_40f.mp4"
STREET = VIDEOS / "street_people_5f.mp4"
ARCHIVE = SHARED_DATA / "mocap" / "bandai_motion.tar.xz"


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (CI has ../shared/data beside the project root)")
    return path


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    return require_shared(VIDEOS)


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg binary that imageio-ffmpeg bundles (no system ffmpeg needed)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def run_cli(
    *args: str,
    cwd: Path | None = None,
    prefix: list[str] | None = None,
    timeout: float = 600,
    env: dict[str, str] | None = None,
):
    """Run the installed `camerapose` entry point in a subprocess, as a shell script would (`env`: added)."""
    command = [*(prefix or []), sys.executable, "-m", "camerapose_cli", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def wait_for(predicate, timeout: float = 120) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def extract_run(tmp_path_factory, shared_videos):
    """One `camerapose extract --overlay --json` over the shared videos, reused by many tests."""
    out = tmp_path_factory.mktemp("extract") / "run"
    result = run_cli("extract", str(shared_videos), "--out", str(out), "--overlay", "--json", "--pipeline", "default")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def copy_video(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


@pytest.fixture(scope="session")
def bandai():
    """The Bandai mocap, read once (and cached under ~/.cache/camerapose)."""
    from camerapose_cli.io.mocap import load_mocap

    return load_mocap(require_shared(ARCHIVE))
