"""Pseudo-labels for weak supervision: keep only the detector's confident output, and say why the rest went.

Thresholds are the preset's [harvest] table. A row is dropped for the first rule it breaks, in the order
below; kept rows have their unconfident joints unlabelled (confidence 0), like COCO's visibility 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from camerapose_cli.schema import KeypointTable

DROP_REASONS = ("low_score", "small_box", "short_track", "few_confident_joints")


@dataclass
class HarvestReport:
    rows_in: int = 0
    rows_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    joints_kept: int = 0

    def add(self, other: "HarvestReport") -> None:
        self.rows_in += other.rows_in
        self.rows_kept += other.rows_kept
        self.dropped.update(other.dropped)
        self.joints_kept += other.joints_kept

    def as_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_kept": self.rows_kept, "joints_kept": self.joints_kept,
                "dropped": {reason: int(self.dropped.get(reason, 0)) for reason in DROP_REASONS}}  # fmt: skip


def harvest_table(table: KeypointTable, cfg: dict[str, Any]) -> tuple[KeypointTable, HarvestReport]:
    """The confident part of one keypoints2d table, and a report of what was dropped and why."""
    n = len(table)
    reason = np.full(n, "", dtype=object)

    def drop(mask: np.ndarray, why: str) -> None:
        reason[(reason == "") & mask] = why

    drop(table.score < float(cfg["min_score"]), "low_score")
    drop(table.bbox[:, 3] - table.bbox[:, 1] < float(cfg["min_box_height_px"]), "small_box")
    ids, counts = np.unique(table.track_id, return_counts=True)
    length = dict(zip(ids.tolist(), counts.tolist()))
    drop(np.array([length[t] for t in table.track_id.tolist()], dtype=int) < int(cfg["min_track_frames"]), "short_track")
    confident = table.keypoints[..., 2] >= float(cfg["min_joint_conf"])
    drop(confident.sum(-1) < int(cfg["min_joints"]), "few_confident_joints")
    keep = reason == ""
    keypoints = table.keypoints[keep].copy()
    keypoints[..., 2] = np.where(confident[keep], keypoints[..., 2], 0.0)
    kept = replace(
        table, video=table.video[keep], frame=table.frame[keep], time_s=table.time_s[keep], track_id=table.track_id[keep],
        bbox=table.bbox[keep], score=table.score[keep], keypoints=keypoints, width=table.width[keep], height=table.height[keep],
    )  # fmt: skip
    report = HarvestReport(n, int(keep.sum()), Counter(reason[~keep].tolist()), int(confident[keep].sum()))
    return kept, report
