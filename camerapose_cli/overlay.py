"""Draw tracked skeletons on the source frames and encode a browser-playable H.264 (yuv420p) MP4.

Drawing uses OpenCV's built-in Hershey font (no font download); encoding pipes raw frames through
ffmpeg-python into the ffmpeg binary that imageio-ffmpeg bundles (no system ffmpeg).
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from camerapose_cli.errors import InputError
from camerapose_cli.schema import KeypointTable
from camerapose_cli.skeleton import COCO17_BONES
from camerapose_cli.video import MediaInfo, iter_frame_batches


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
        cv2.putText(frame, label, (x1, max(0, y1 - 4 * thickness)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thickness, color, thickness, cv2.LINE_AA)  # fmt: skip
    return frame


def _rows_by_frame(table: KeypointTable) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(table.frame, kind="stable")
    return order, table.frame[order]


def render_overlay(
    info: MediaInfo, table: KeypointTable, out_path: Path, params: dict[str, Any], batch_size: int
) -> int:
    """Write the overlay for one input to `out_path` (MP4 for video, PNG for a still image); return frames written."""
    order, sorted_frames = _rows_by_frame(table)
    min_conf = float(params["min_kp_conf"])
    if info.is_image:
        batch = next(iter_frame_batches(info, 1))
        frame = draw_people(batch.frames[0].copy(), table, order, min_conf)
        if not cv2.imwrite(str(out_path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise InputError(f"cannot write the overlay image {out_path}")
        return 1
    encoder = _start_encoder(info, out_path, params)
    written = 0
    try:
        for batch in iter_frame_batches(info, batch_size):
            for frame_index, frame in zip(batch.indices, batch.frames):
                lo, hi = np.searchsorted(sorted_frames, [frame_index, frame_index + 1])
                frame = draw_people(frame.copy(), table, order[lo:hi], min_conf)
                encoder.stdin.write(frame.tobytes())
                written += 1
        encoder.stdin.close()
        error = encoder.stderr.read().decode(errors="replace").strip()
        if encoder.wait() != 0:
            raise InputError(f"overlay encoding failed ({error.splitlines()[-1] if error else 'ffmpeg error'})")
    finally:
        if encoder.poll() is None:
            encoder.kill()
            encoder.wait()
    return written


def _start_encoder(info: MediaInfo, out_path: Path, params: dict[str, Any]):
    import ffmpeg
    import imageio_ffmpeg

    fps = info.fps if info.fps > 0 else 25.0
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.width}x{info.height}", framerate=fps)
    # yuv420p needs even sides; pad odd ones by a pixel rather than rescale.
    stream = stream.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
    stream = stream.output(
        str(out_path),
        format="mp4",
        vcodec="libx264",
        pix_fmt="yuv420p",
        crf=int(params["crf"]),
        preset=str(params["encoder_preset"]),
        movflags="+faststart",
        an=None,
    )
    stream = stream.global_args("-loglevel", "error", "-nostdin").overwrite_output()
    return stream.run_async(cmd=imageio_ffmpeg.get_ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
