"""2D-only samples for weak supervision: harvested pseudo-labels and COCO annotations.

`harvest_table` keeps only the detector's confident output and says why the rest went: thresholds are the
preset's [harvest] table, a row is dropped for the first rule it breaks (in the order of DROP_REASONS), and
kept rows have their unconfident joints unlabelled (confidence 0), like COCO's visibility 0.

`load_weak_2d` takes any mix of run folders (their tables found by io.schema.find_keypoints2d_tables) and
COCO person-keypoint JSON files, and returns the keypoints with the camera they were seen by (focal length
from the assumed field of view, principal point at the image centre), plus a harvest report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from camerapose_cli.config import HarvestSection
from camerapose_cli.core.geometry import focal_from_fov
from camerapose_cli.errors import InputError
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.io.schema import KeypointTable, find_keypoints2d_tables, read_keypoints2d

DROP_REASONS = ("low_score", "small_box", "short_track", "few_confident_joints")


@dataclass
class HarvestReport:
    rows_in: int = 0
    rows_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    joints_kept: int = 0

    def add(self, other: HarvestReport) -> None:
        self.rows_in += other.rows_in
        self.rows_kept += other.rows_kept
        self.dropped.update(other.dropped)
        self.joints_kept += other.joints_kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "joints_kept": self.joints_kept,
            "dropped": {reason: int(self.dropped.get(reason, 0)) for reason in DROP_REASONS},
        }


def harvest_table(table: KeypointTable, cfg: HarvestSection) -> tuple[KeypointTable, HarvestReport]:
    """The confident part of one keypoints2d table, and a report of what was dropped and why."""
    n = len(table)
    reason = np.full(n, "", dtype=object)

    def drop(mask: np.ndarray, why: str) -> None:
        reason[(reason == "") & mask] = why

    drop(table.score < cfg.min_score, "low_score")
    drop(table.bbox[:, 3] - table.bbox[:, 1] < cfg.min_box_height_px, "small_box")
    ids, counts = np.unique(table.track_id, return_counts=True)
    length = dict(zip(ids.tolist(), counts.tolist()))
    drop(np.array([length[t] for t in table.track_id.tolist()], dtype=int) < cfg.min_track_frames, "short_track")
    confident = table.keypoints[..., 2] >= cfg.min_joint_conf
    drop(confident.sum(-1) < cfg.min_joints, "few_confident_joints")
    keep = reason == ""
    keypoints = table.keypoints[keep].copy()
    keypoints[..., 2] = np.where(confident[keep], keypoints[..., 2], 0.0)
    kept = replace(
        table,
        video=table.video[keep],
        frame=table.frame[keep],
        time_s=table.time_s[keep],
        track_id=table.track_id[keep],
        bbox=table.bbox[keep],
        score=table.score[keep],
        keypoints=keypoints,
        width=table.width[keep],
        height=table.height[keep],
    )
    report = HarvestReport(n, int(keep.sum()), Counter(reason[~keep].tolist()), int(confident[keep].sum()))
    return kept, report


@dataclass
class WeakSamples:
    keypoints: np.ndarray  # float32 (N, 17, 3) px, confidence 0 where unlabelled
    focal: np.ndarray  # float32 (N,)
    principal: np.ndarray  # float32 (N, 2)
    source: np.ndarray  # int (N,) index into `sources`
    sources: list[str]

    def __len__(self) -> int:
        return len(self.keypoints)


def load_weak_2d(paths: list[Path], harvest_cfg: HarvestSection, fov_deg: float) -> tuple[WeakSamples, dict[str, Any]]:
    """Every usable 2D-only sample under `paths`, and a report of what was kept and dropped, per source."""
    keypoints, widths, heights, source = [], [], [], []
    report: dict[str, Any] = {"sources": {}}
    for i, path in enumerate(paths):
        rows_before = sum(len(k) for k in keypoints)
        if path.is_file() and path.suffix.lower() == ".json":
            people = read_coco_keypoints(path)
            keypoints.append(people.keypoints)
            widths.append(people.width)
            heights.append(people.height)
            report["sources"][str(path)] = {
                "kind": "coco",
                "people": len(people.keypoints),
                "joints": int((people.keypoints[..., 2] > 0).sum()),
            }
        elif path.is_dir():
            total = HarvestReport()
            _, files = find_keypoints2d_tables(path)
            if not files:
                raise InputError(f"{path}: no keypoints2d tables (run camerapose extract on your videos first)")
            for file in files:
                kept, part = harvest_table(read_keypoints2d(file), harvest_cfg)
                total.add(part)
                keypoints.append(kept.keypoints)
                widths.append(kept.width)
                heights.append(kept.height)
            report["sources"][str(path)] = {"kind": "pseudo-labels", "tables": len(files), **total.as_dict()}
        else:
            raise InputError(f"{path}: not a folder of keypoints2d tables or a COCO keypoint .json file")
        source.append(np.full(sum(len(k) for k in keypoints) - rows_before, i))
    kp = np.concatenate(keypoints).astype(np.float32)
    width, height = np.concatenate(widths), np.concatenate(heights)
    samples = WeakSamples(
        keypoints=kp,
        focal=focal_from_fov(width, height, fov_deg).astype(np.float32),
        principal=(np.stack([width, height], -1) / 2).astype(np.float32),
        source=np.concatenate(source),
        sources=[str(p) for p in paths],
    )
    report["samples"] = len(samples)
    return samples, report
