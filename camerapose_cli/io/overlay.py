"""Draw tracked skeletons on the source frames and encode a browser-playable H.264 (yuv420p) MP4.

Drawing uses OpenCV's built-in Hershey font (no font download); encoding pipes raw frames through
ffmpeg-python into the ffmpeg binary that imageio-ffmpeg bundles (no system ffmpeg).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import ffmpeg
import imageio_ffmpeg
import numpy as np

from camerapose_cli.core.skeleton import COCO17_BONES, H36M17_BONES
from camerapose_cli.errors import InputError
from camerapose_cli.io.schema import KeypointTable
from camerapose_cli.io.video import MediaInfo, iter_frame_batches


class OverlayStyle(Protocol):
    """What drawing and encoding read: the preset's [overlay] section (config.OverlaySection) fits it."""

    min_kp_conf: float
    crf: int
    encoder_preset: str
    view_size: int


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour per track id (golden-ratio hue steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_people(frame: np.ndarray, rows: KeypointTable, index: np.ndarray, min_kp_conf: float) -> np.ndarray:
    """Draw the boxes, skeletons and track ids of `rows[index]` onto an RGB frame, in place."""
    height, width = frame.shape[:2]
    thickness = max(1, int(round(max(height, width) / 400)))
    for i in index:
        color = track_color(int(rows.track_id[i]))
        x1, y1, x2, y2 = (int(round(v)) for v in rows.bbox[i])
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness)
        kp = rows.keypoints[i]
        visible = kp[:, 2] >= min_kp_conf
        for a, b in COCO17_BONES:
            if visible[a] and visible[b]:
                pa = (int(round(kp[a, 0])), int(round(kp[a, 1])))
                pb = (int(round(kp[b, 0])), int(round(kp[b, 1])))
                cv2.line(frame, pa, pb, color, thickness + 1, cv2.LINE_AA)
        for x, y, _ in kp[visible]:
            cv2.circle(frame, (int(round(x)), int(round(y))), thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
        label = f"#{int(rows.track_id[i])}"
        cv2.putText(
            frame,
            label,
            (x1, max(0, y1 - 4 * thickness)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * thickness,
            color,
            thickness,
            cv2.LINE_AA,
        )
    return frame


def _rows_by_frame(table: KeypointTable) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(table.frame, kind="stable")
    return order, table.frame[order]


def render_overlay(info: MediaInfo, table: KeypointTable, out_path: Path, params: OverlayStyle, batch_size: int) -> int:
    """Write the overlay for one input to `out_path` (MP4 for video, PNG for a still image); return frames written."""
    order, sorted_frames = _rows_by_frame(table)
    min_conf = params.min_kp_conf

    def compose(frame_index: int, frame: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(sorted_frames, [frame_index, frame_index + 1])
        return draw_people(frame.copy(), table, order[lo:hi], min_conf)

    return _write_frames(info, (info.width, info.height), compose, out_path, params, batch_size)


def _write_frames(
    info: MediaInfo,
    size: tuple[int, int],
    compose,
    out_path: Path,
    params: OverlayStyle,
    batch_size: int,
) -> int:
    """Decode `info`, turn each frame into an output frame of `size` with `compose(index, frame)`, and write them:
    a PNG for a still image, else an H.264 MP4 at the source's rate. Returns the frames written. Videos are
    decoded by PyAV, on demand: at full size decord's unbounded run-ahead would cost the most (io.video.
    choose_decoder); both give the same frame indices and times, so overlay and table see the same frames."""
    if info.is_image:
        frame = compose(0, next(iter_frame_batches(info, 1)).frames[0])
        if not cv2.imwrite(str(out_path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise InputError(f"cannot write the overlay image {out_path}")
        return 1
    encoder = _start_encoder(
        MediaInfo(info.path, size[0], size[1], 0, info.fps, info.frame_count, False), out_path, params
    )
    written = 0
    try:
        for batch in iter_frame_batches(info, batch_size, decoder="pyav"):
            for frame_index, frame in zip(batch.indices, batch.frames):
                encoder.stdin.write(compose(int(frame_index), frame).tobytes())
                written += 1
        _finish_encoder(encoder)
    finally:
        if encoder.poll() is None:
            encoder.kill()
            encoder.wait()
    return written


@dataclass(frozen=True)
class ViewBox:
    """The metric extent the side and top views show, fixed per video so the views do not jump."""

    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float]


def view_box(joints_cam: np.ndarray, margin: float = 0.3) -> ViewBox:
    """A box around camera-frame joints (N, 17, 3) of a whole video, robust to outliers."""
    if len(joints_cam) == 0:
        return ViewBox((-1.5, 1.5), (-1.0, 1.0), (1.0, 6.0))
    flat = joints_cam.reshape(-1, 3)
    lo, hi = np.percentile(flat, 2, axis=0) - margin, np.percentile(flat, 98, axis=0) + margin
    return ViewBox((lo[0], hi[0]), (lo[1], hi[1]), (max(lo[2], 0.0), hi[2]))


def draw_views(joints_cam: np.ndarray, track_ids: np.ndarray, box: ViewBox, size: int) -> np.ndarray:
    """Side view (depth → right, down ↓) over top view (x → right, depth ↑) of 3D skeletons: (2*size, size, 3)."""
    panels = []
    for horizontal, vertical, flip, title in ((2, 1, False, "side"), (0, 2, True, "top")):
        panel = np.full((size, size, 3), 24, np.uint8)
        ranges = [box.x, box.y, box.z]
        h_lo, h_hi = ranges[horizontal]
        v_lo, v_hi = ranges[vertical]
        span = max(h_hi - h_lo, v_hi - v_lo, 1e-3)
        scale = (size - 20) / span

        def to_px(p: np.ndarray) -> tuple[int, int]:
            u = 10 + (p[horizontal] - h_lo) * scale
            v = 10 + (p[vertical] - v_lo) * scale
            return int(round(u)), int(round(size - v if flip else v))

        for joints, track in zip(joints_cam, track_ids):
            color = track_color(int(track))
            for a, b in H36M17_BONES:
                cv2.line(panel, to_px(joints[a]), to_px(joints[b]), color, 2, cv2.LINE_AA)
        cv2.putText(panel, title, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 200, 200), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.concatenate(panels, axis=0)


def render_overlay_3d(
    info: MediaInfo,
    table: KeypointTable,
    joints_cam: np.ndarray,
    out_path: Path,
    params: OverlayStyle,
    batch_size: int,
) -> int:
    """The 2D overlay with side and top views of the 3D skeletons beside it, as H.264 MP4. Returns frames."""
    order, sorted_frames = _rows_by_frame(table)
    min_conf = params.min_kp_conf
    panel = params.view_size
    height = 2 * panel
    width = int(round(info.width * height / info.height)) // 2 * 2
    box = view_box(joints_cam)

    def compose(frame_index: int, frame: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(sorted_frames, [frame_index, frame_index + 1])
        rows = order[lo:hi]
        drawn = cv2.resize(draw_people(frame.copy(), table, rows, min_conf), (width, height))
        return np.concatenate([drawn, draw_views(joints_cam[rows], table.track_id[rows], box, panel)], axis=1)

    return _write_frames(info, (width + panel, height), compose, out_path, params, batch_size)


def _finish_encoder(encoder) -> None:
    encoder.stdin.close()
    error = encoder.stderr.read().decode(errors="replace").strip()
    if encoder.wait() != 0:
        raise InputError(f"overlay encoding failed ({error.splitlines()[-1] if error else 'ffmpeg error'})")


def _start_encoder(info: MediaInfo, out_path: Path, params: OverlayStyle):
    fps = info.fps if info.fps > 0 else 25.0
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.width}x{info.height}", framerate=fps)
    # yuv420p needs even sides; pad odd ones by a pixel rather than rescale.
    stream = stream.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
    stream = stream.output(
        str(out_path),
        format="mp4",
        vcodec="libx264",
        pix_fmt="yuv420p",
        crf=params.crf,
        preset=params.encoder_preset,
        movflags="+faststart",
        an=None,
    )
    stream = stream.global_args("-loglevel", "error", "-nostdin").overwrite_output()
    return stream.run_async(cmd=imageio_ffmpeg.get_ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
