"""Find inputs and decode them in batches: decord first, PyAV where decord can't, still images via Pillow.

Frames come out RGB, rotated to their display orientation (phone videos carry a rotation in their
metadata), optionally resized, with the container's presentation timestamps.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import cv2
import decord
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from camerapose_cli.errors import InputError

decord.bridge.set_bridge("native")
decord.logging.set_level(decord.logging.QUIET)  # its libav warnings; our errors say what failed

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True)
class MediaInfo:
    """What decoding needs to know about one input, read from its container."""

    path: Path
    width: int  # displayed (rotation-corrected) size
    height: int
    rotation: int  # the display-matrix angle (counter-clockwise, as ffmpeg reports it): 0, 90, 180, 270
    fps: float
    frame_count: int  # the container's estimate; the decoded count is authoritative
    is_image: bool


Decoder = Literal["decord", "pyav", "image"]


class DecordError(InputError):
    """decord failed part-way through a video that PyAV may still decode: decode it again with PyAV."""


@dataclass(frozen=True)
class FrameBatch:
    indices: np.ndarray  # int64 (B,), 0-based decode index
    times: np.ndarray  # float64 (B,), presentation time in seconds
    frames: np.ndarray  # uint8 (B, H, W, 3) RGB, display orientation
    decoder: Decoder = "pyav"  # what decoded it


def discover_inputs(root: Path) -> list[Path]:
    """Every video or still image under `root` (recursive, case-insensitive suffixes), sorted; or `root` itself."""
    suffixes = VIDEO_SUFFIXES | IMAGE_SUFFIXES
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and (p.is_file() or p.is_symlink()))


def _check_readable(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except PermissionError:
        raise InputError("cannot read the file: permission denied") from None
    except FileNotFoundError:
        raise InputError("the file does not exist (a broken link?)") from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {os.strerror(exc.errno or errno.EIO)}") from None
    if not head:
        raise InputError("the file is empty (0 bytes)")


def probe(path: Path) -> MediaInfo:
    """Open the container, check it has a decodable video stream, and read size, rotation and rate."""
    _check_readable(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = _open_image(path)
        return MediaInfo(path, image.width, image.height, 0, 0.0, 1, True)

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputError(f"not a readable video container ({_ffmpeg_reason(exc)})") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise InputError(f"the container has no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise InputError(f"the first frame cannot be decoded ({_ffmpeg_reason(exc)})") from None
        if first is None:
            raise InputError("the video stream holds no decodable frame")
        rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
        if rotation not in (0, 90, 180, 270):
            raise InputError(f"unsupported display rotation of {rotation} degrees")
        coded_w, coded_h = first.width, first.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frame_count = int(stream.frames or 0)
        if frame_count == 0 and stream.duration and stream.time_base and fps:
            frame_count = int(round(float(stream.duration * stream.time_base) * fps))
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return MediaInfo(path, width, height, rotation, fps, frame_count, False)


def choose_decoder(info: MediaInfo, size: tuple[int, int] | None, decord_max_mb: float) -> Decoder:
    """decord for a video whose decoded frames at `size` (width, height) fit in `decord_max_mb` altogether, PyAV
    for a longer one. decord's decoder thread runs ahead of its reader without bound, up to the whole video when
    the reader is slower (as the detector is), so it gets only videos it could hold whole; PyAV decodes on
    demand, so memory stays one batch whatever the length (docs/experiments.md)."""
    width, height = size if size is not None else (info.width, info.height)
    decoded_mb = max(info.frame_count, 1) * width * height * 3 / 2**20
    return "decord" if decoded_mb <= decord_max_mb else "pyav"


def iter_frame_batches(
    info: MediaInfo,
    batch_size: int,
    size: tuple[int, int] | None = None,
    decoder: Decoder | None = None,
    threads: int = 1,
) -> Iterator[FrameBatch]:
    """Decode `info.path` in order, `batch_size` frames at a time, resized to `size` = (width, height) if given.

    decord by default, PyAV where decord cannot open the file or with `decoder="pyav"` (`choose_decoder` says
    which keeps memory bounded). PyAV holds one batch at a time, whatever the video's length, and decodes with
    `threads` frame threads (0: FFmpeg's choice, one per core). Raises DecordError when decord fails part-way
    (the caller decodes again with PyAV, so that every frame of one output comes from one decoder), InputError
    on other failures.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if info.is_image:
        yield _image_batch(info, size)
        return
    reader = None
    if decoder != "pyav":
        try:
            reader = _open_decord(info, size)
        except Exception:  # decord can't open some containers/codecs; PyAV can
            reader = None
    if reader is None:
        yield from _iter_pyav(info, batch_size, size, threads)
    else:
        yield from _iter_decord(reader, info, batch_size)


def _open_image(path: Path):
    try:
        with Image.open(path) as raw:
            return ImageOps.exif_transpose(raw).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"not a readable image ({exc.__class__.__name__}: {exc})") from None


def _image_batch(info: MediaInfo, size: tuple[int, int] | None) -> FrameBatch:
    frames = np.array(_open_image(info.path), dtype=np.uint8)
    if size is not None:
        frames = resize_frame(frames, *size)
    frames = frames[None]
    return FrameBatch(np.zeros(1, np.int64), np.zeros(1, np.float64), frames, "image")


def _coded_size(info: MediaInfo, size: tuple[int, int] | None) -> tuple[int, int]:
    width, height = size if size is not None else (info.width, info.height)
    return (height, width) if info.rotation in (90, 270) else (width, height)


def _to_display(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Turn coded frames (B, H, W, 3) upright: PyAV hands them over as coded, unlike decord."""
    if rotation == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=rotation // 90, axes=(1, 2)))


def _open_decord(info: MediaInfo, size: tuple[int, int] | None):
    # decord applies the display rotation itself, so it takes sizes in display orientation.
    width, height = size if size is not None else (info.width, info.height)
    reader = decord.VideoReader(str(info.path), ctx=decord.cpu(0), width=width, height=height)
    if len(reader) == 0:
        raise InputError("no frames")
    return reader


def _iter_decord(reader, info: MediaInfo, batch_size: int) -> Iterator[FrameBatch]:
    total = len(reader)
    for start in range(0, total, batch_size):
        indices = np.arange(start, min(start + batch_size, total), dtype=np.int64)
        try:
            frames = reader.get_batch(indices.tolist()).asnumpy()
            times = np.asarray(reader.get_frame_timestamp(indices.tolist()), dtype=np.float64)[:, 0]
        except decord.DECORDError as exc:
            # decord's messages carry timestamps and its build's source paths: keep the last check's words
            text = re.sub(r"\[[\d:]+\] \S+:\d+: ", "", str(exc)).strip()
            reason = text.splitlines()[0][:160] if text else "decoder error"
            raise DecordError(f"decord failed at frame {start} ({reason})") from None
        yield FrameBatch(indices, times, frames, "decord")


def _iter_pyav(info: MediaInfo, batch_size: int, size: tuple[int, int] | None, threads: int) -> Iterator[FrameBatch]:
    width, height = _coded_size(info, size)
    frames: list[np.ndarray] = []
    times: list[float] = []
    index = 0
    last_pts = None
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            if threads != 1:
                stream.thread_type = "FRAME"
                stream.thread_count = threads
            for frame in container.decode(stream):
                frames.append(resize_frame(frame.to_ndarray(format="rgb24"), width, height))
                times.append(float(frame.time) if frame.time is not None else index / (info.fps or 1.0))
                last_pts = frame.pts
                index += 1
                if len(frames) == batch_size:
                    yield _pyav_batch(index, frames, times, info.rotation)
                    frames, times = [], []
        if threads != 1 and index < info.frame_count:
            _check_tail(info.path, last_pts)
    except av.error.FFmpegError as exc:
        raise InputError(f"decoding failed at frame {index} ({_ffmpeg_reason(exc)})") from None
    if frames:
        yield _pyav_batch(index, frames, times, info.rotation)


def _check_tail(path: Path, last_pts: int | None) -> None:
    """Decode the end of a video again on one thread, from the keyframe before `last_pts`, and raise what that
    decoder raises. Frame threading drops a damaged last packet silently (a truncated file ends early without an
    error), so a threaded decode that stops short of the container's frame count asks the plain decoder."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if last_pts is not None:
            try:
                container.seek(last_pts, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:  # a container without an index: its decode stands, unchecked
                return
        for _ in container.decode(stream):
            pass


def resize_frame(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Ultralytics' resize (`cv2.INTER_LINEAR` on the full-size RGB frame), so the detector sees what its predictor
    would; for PyAV also faster here than its own scaled conversion (docs/performance.md)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _pyav_batch(end: int, frames: list[np.ndarray], times: list[float], rotation: int) -> FrameBatch:
    indices = np.arange(end - len(frames), end, dtype=np.int64)
    return FrameBatch(indices, np.asarray(times, np.float64), _to_display(np.stack(frames), rotation))


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().splitlines()[0][:200] if text else exc.__class__.__name__
