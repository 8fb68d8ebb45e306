"""The refine stage: clean up one track's noisy 2D keypoints with the confidence-guided refinement network.

read → refine → write. `refine_table` is the pure core: a KeypointTable in, a refined copy out. Each
track is laid on a dense timeline (gaps become masked frames), cut into overlapping windows normalized on
their own, refined, and blended back with triangular weights, so memory is bounded by the window.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from camerapose_cli import __version__
from camerapose_cli.atomic import atomic_output
from camerapose_cli.errors import InputError
from camerapose_cli.geometry import normalize_track
from camerapose_cli.models.refiner import Refiner
from camerapose_cli.resources import file_sha256, shipped_dir
from camerapose_cli.schema import KeypointTable, file_stamp, output_is_current, read_keypoints2d, write_parquet


def default_refiner_weights() -> Path:
    return shipped_dir("weights") / "refiner.pt"


def load_refiner(path: Path) -> Refiner:
    try:
        return Refiner.from_checkpoint(torch.load(path, map_location="cpu", weights_only=False))
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a usable refiner checkpoint ({exc})") from None


def _windows(length: int, window: int) -> list[int]:
    """Start frames of windows of `window` frames, half-overlapping, covering 0..length-1."""
    if length <= window:
        return [0]
    hop = window // 2
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


@torch.inference_mode()
def refine_track(model: Refiner, frames: np.ndarray, keypoints: np.ndarray, window: int) -> np.ndarray:
    """Refine one track: frames (N,) sorted and unique, keypoints (N, 17, 3). Returns refined (N, 17, 3)."""
    length = int(frames[-1] - frames[0] + 1)
    slot = frames - frames[0]
    dense = np.zeros((length, *keypoints.shape[1:]), np.float32)
    dense[slot] = keypoints
    present = np.zeros(length, bool)
    present[slot] = True
    size = min(window, length)
    starts = _windows(length, size)
    chunk = torch.from_numpy(np.stack([dense[s : s + size] for s in starts]))
    mask = torch.from_numpy(np.stack([present[s : s + size] for s in starts]))
    normalized, centre, scale = normalize_track(chunk[..., :2], chunk[..., 2], mask)
    out = model(torch.cat([normalized, chunk[..., 2:]], -1), mask)
    refined_xy = (out.keypoints * scale[:, None, None, None] + centre[:, None, None]).numpy()
    refined_conf = out.conf.numpy()
    # Blend overlapping windows; triangular weights favour each window's middle over its edges.
    weight = 1.0 - np.abs(np.arange(size) - (size - 1) / 2) / (size / 2) + 1e-3
    total = np.zeros((length, *keypoints.shape[1:]), np.float64)
    norm = np.zeros(length)
    for i, s in enumerate(starts):
        total[s : s + size, :, :2] += weight[:, None, None] * refined_xy[i]
        total[s : s + size, :, 2] += weight[:, None] * refined_conf[i]
        norm[s : s + size] += weight
    return (total / norm[:, None, None])[slot].astype(np.float32)


def refine_table(table: KeypointTable, model: Refiner, params: dict[str, Any]) -> KeypointTable:
    """A copy of `table` with every track of at least `min_track_frames` rows refined."""
    keypoints = table.keypoints.copy()
    for track in np.unique(table.track_id):
        rows = np.flatnonzero(table.track_id == track)
        rows = rows[np.argsort(table.frame[rows], kind="stable")]
        if len(rows) < int(params["min_track_frames"]):
            continue
        keypoints[rows] = refine_track(model, table.frame[rows], table.keypoints[rows], int(params["window"]))
    return replace(table, keypoints=keypoints)


def refine_output_current(out_path: Path, table_path: Path, refiner_sha: str) -> bool:
    return output_is_current(out_path, table_path, "input", {"refiner_sha256": refiner_sha})


def refine_file(table_path: Path, out_path: Path, model: Refiner, weights: Path, params: dict[str, Any], preset_name: str) -> KeypointTable:
    table = read_keypoints2d(table_path)
    refined = refine_table(table, model, params)
    meta = {**table.metadata, "refined": "true", "refiner": weights.name, "refiner_sha256": file_sha256(weights),
            "input_table": str(table_path.resolve()), **file_stamp(table_path, "input"),
            "refine_tool_version": __version__, "refine_preset": preset_name}  # fmt: skip
    with atomic_output(out_path) as tmp:
        write_parquet(refined.to_arrow(), tmp, meta)
    return refined


def run_refine(jobs: list, out_root: Path, params: dict[str, Any], *, weights: Path, preset_name: str, force: bool, reporter) -> list:
    from camerapose_cli.atomic import remove_stale_partials
    from camerapose_cli.runner import Outcome, run_jobs

    remove_stale_partials(out_root / "keypoints2d_refined")
    model = load_refiner(weights)
    sha = file_sha256(weights)

    def work(job, progress) -> Outcome:
        out_path = out_root / "keypoints2d_refined" / f"{job.rel}.parquet"
        if not force and refine_output_current(out_path, job.source, sha):
            rows = pq.ParquetFile(out_path).metadata.num_rows
            return Outcome(job.rel, "skipped", detections=rows, model=weights.name, model_sha256=sha, output=str(out_path))
        started = time.perf_counter()
        try:
            refined = refine_file(job.source, out_path, model, weights, params, preset_name)
        except InputError:
            out_path.unlink(missing_ok=True)
            raise
        return Outcome(job.rel, "done", frames=int(refined.metadata.get("frames", 0) or 0), detections=len(refined),
                       tracks=len(np.unique(refined.track_id)), model=weights.name, model_sha256=sha,
                       output=str(out_path), seconds=time.perf_counter() - started)  # fmt: skip

    return run_jobs(jobs, work, reporter, out_root / "manifest_refine.parquet")
