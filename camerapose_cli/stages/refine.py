"""The refine stage: read → refine → write, cleaning each track's noisy 2D keypoints with the confidence-guided
refinement network.

`refine_table` is the pure core: a KeypointTable in, a refined copy out. Each track is laid on a dense
timeline (gaps become masked frames), cut into overlapping windows normalized on their own, refined, and
blended back with triangular weights, so memory is bounded by the window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli.config import RefineSection
from camerapose_cli.core.device import module_device, resolve_device
from camerapose_cli.core.geometry import normalize_track, on_image_border
from camerapose_cli.io.resources import file_sha256
from camerapose_cli.io.schema import KeypointTable, read_keypoints2d, write_parquet
from camerapose_cli.models.checkpoints import load_refiner
from camerapose_cli.models.refiner import Refiner
from camerapose_cli.progress import Reporter
from camerapose_cli.stages.base import Job, Stage


@dataclass(frozen=True)
class Refinement:
    """A refiner with its settings: what `refine` runs, and what `lift` runs first (on by default)."""

    model: Refiner
    weights: Path
    config: RefineSection

    @classmethod
    def load(cls, weights: Path, config: RefineSection) -> Refinement:
        """The refiner of `weights` on the device `config` names (checked here, before any input)."""
        return cls(load_refiner(weights).to(resolve_device(config.device)), weights, config)

    @property
    def sha256(self) -> str:
        return file_sha256(self.weights)

    def settings(self) -> dict[str, Any]:
        device = module_device(self.model).type
        return {"refine": self.config.result_settings(), "device": device, "refiner_sha256": self.sha256}

    def __call__(self, table: KeypointTable) -> KeypointTable:
        return refine_table(table, self.model, self.config)


def window_starts(length: int, window: int) -> list[int]:
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
    """Refine one track on the model's device: frames (N,) sorted and unique, keypoints (N, 17, 3). Returns refined
    (N, 17, 3)."""
    length = int(frames[-1] - frames[0] + 1)
    slot = frames - frames[0]
    dense = np.zeros((length, *keypoints.shape[1:]), np.float32)
    dense[slot] = keypoints
    present = np.zeros(length, bool)
    present[slot] = True
    size = min(window, length)
    starts = window_starts(length, size)
    device = module_device(model)
    chunk = torch.from_numpy(np.stack([dense[s : s + size] for s in starts])).to(device)
    mask = torch.from_numpy(np.stack([present[s : s + size] for s in starts])).to(device)
    normalized, centre, scale = normalize_track(chunk[..., :2], chunk[..., 2], mask)
    out = model(torch.cat([normalized, chunk[..., 2:]], -1), mask)
    refined_xy = (out.keypoints * scale[:, None, None, None] + centre[:, None, None]).cpu().numpy()
    refined_conf = out.conf.cpu().numpy()
    # Blend overlapping windows; triangular weights favour each window's middle over its edges.
    weight = 1.0 - np.abs(np.arange(size) - (size - 1) / 2) / (size / 2) + 1e-3
    total = np.zeros((length, *keypoints.shape[1:]), np.float64)
    norm = np.zeros(length)
    for i, s in enumerate(starts):
        total[s : s + size, :, :2] += weight[:, None, None] * refined_xy[i]
        total[s : s + size, :, 2] += weight[:, None] * refined_conf[i]
        norm[s : s + size] += weight
    return (total / norm[:, None, None])[slot].astype(np.float32)


def refine_table(table: KeypointTable, model: Refiner, config: RefineSection) -> KeypointTable:
    """A copy of `table` with every track of at least `min_track_frames` rows refined. Keypoints on the image's
    border (`border_margin`; 0: none) keep the detection: there a detector puts what the frame cuts off a person."""
    keypoints = table.keypoints.copy()
    for track in np.unique(table.track_id):
        rows = np.flatnonzero(table.track_id == track)
        rows = rows[np.argsort(table.frame[rows], kind="stable")]
        if len(rows) < config.min_track_frames:
            continue
        keypoints[rows] = refine_track(model, table.frame[rows], table.keypoints[rows], config.window)
    keypoints = keep_border_detections(keypoints, table.keypoints, table.width, table.height, config.border_margin)
    return replace(table, keypoints=keypoints)


def keep_border_detections(
    refined: np.ndarray, detected: np.ndarray, width: np.ndarray, height: np.ndarray, margin: float
) -> np.ndarray:
    """`refined` (N, 17, 3) with the `detected` keypoints that lie within `margin` of their image's border (width,
    height (N,) px; core.geometry.on_image_border) put back; margin 0: `refined` as it is."""
    if margin <= 0:
        return refined
    border = on_image_border(detected[..., :2], width, height, margin)
    return np.where(border[..., None], detected, refined).astype(refined.dtype)


class RefineStage(Stage):
    name = "refine"
    table_dir = "keypoints2d_refined"
    overlay_dir = ""
    manifest = "manifest_refine.parquet"
    stamp_prefix = "input"

    def __init__(self, weights: Path, config: RefineSection, preset_name: str) -> None:
        self.refinement = refinement = Refinement.load(weights, config)
        self.model_name, self.model_sha256, self.preset_name = refinement.weights.name, refinement.sha256, preset_name

    def settings(self) -> dict[str, Any]:
        return self.refinement.settings()

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        table = read_keypoints2d(job.source)
        progress.start_input(job.rel, len(table))
        refined = self.refinement(table)
        meta = {
            **table.metadata,
            "refined": "true",
            "refiner": self.model_name,
            "refiner_sha256": self.model_sha256,
            "input_table": str(job.source.resolve()),
            **footer,
        }
        write_parquet(refined.to_arrow(), path, meta)
