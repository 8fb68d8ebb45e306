"""2D-only training samples for weak supervision: harvested pseudo-labels and COCO annotations.

`load_weak_2d` takes any mix of run folders (keypoints2d/ or keypoints2d_refined/ tables written by
`extract` or `refine`), keypoints2d folders, and COCO person-keypoint JSON files, and returns the keypoints
with the camera they were seen by (focal length from the assumed field of view, principal point at the
image centre), plus a harvest report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camerapose_cli.coco import read_coco_keypoints
from camerapose_cli.errors import InputError
from camerapose_cli.harvest import HarvestReport, harvest_table
from camerapose_cli.lift import focal_from_fov
from camerapose_cli.schema import read_keypoints2d


@dataclass
class WeakSamples:
    keypoints: np.ndarray  # float32 (N, 17, 3) px, confidence 0 where unlabelled
    focal: np.ndarray  # float32 (N,)
    principal: np.ndarray  # float32 (N, 2)
    source: np.ndarray  # int (N,) index into `sources`
    sources: list[str]

    def __len__(self) -> int:
        return len(self.keypoints)


def _table_files(path: Path) -> list[Path]:
    for sub in ("keypoints2d_refined", "keypoints2d"):
        if (path / sub).is_dir():
            return sorted((path / sub).rglob("*.parquet"))
    return sorted(path.rglob("*.parquet"))


def load_weak_2d(paths: list[Path], harvest_cfg: dict[str, Any], fov_deg: float) -> tuple[WeakSamples, dict[str, Any]]:
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
            report["sources"][str(path)] = {"kind": "coco", "people": len(people.keypoints),
                                            "joints": int((people.keypoints[..., 2] > 0).sum())}  # fmt: skip
        elif path.is_dir():
            total = HarvestReport()
            files = _table_files(path)
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
