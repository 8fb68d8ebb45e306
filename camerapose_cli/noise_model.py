"""The 2D detector's error statistics, measured against real annotations, and a noise model built on them.

`calibrate_detector` runs the pose detector on annotated images (COCO JSON) and measures, per joint, the
error relative to the person's size, how confidence relates to error, how often joints are missed and how
often left and right are swapped. `weights/noise_calibration.json` holds the result for YOLO11n-pose;
`weights/calibrate_noise.py` reproduces it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from camerapose_cli.skeleton import COCO17_FLIP, COCO17_JOINTS

CONF_BINS = (0.0, 0.3, 0.5, 0.7, 0.85, 1.01)


@dataclass
class NoiseCalibration:
    """Detector error statistics. Errors are fractions of the person's size (sqrt of the box area)."""

    people: int
    joints: int
    joint_error_median: list[float]  # (17,) median relative error of each joint, detected (conf >= 0.3)
    conf_bins: list[float]
    error_by_conf: list[float]  # median relative error of joints in each confidence bin (nan if empty)
    share_by_conf: list[float]  # fraction of labelled joints in each confidence bin
    miss_rate: float  # labelled joints the detector gives confidence < 0.3
    swap_rate: float  # left/right pairs closer to the swapped labels than to the right ones
    person_recall: float  # annotated people matched by a detection

    def save(self, path: Path) -> None:
        """Strict JSON: an empty statistic (nan) is written as null."""
        clean = {k: [None if isinstance(x, float) and np.isnan(x) else x for x in v] if isinstance(v, list) else v
                 for k, v in asdict(self).items()}  # fmt: skip
        path.write_text(json.dumps(clean, indent=1, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> "NoiseCalibration":
        data = json.loads(Path(path).read_text())
        return cls(**{k: [float("nan") if x is None else x for x in v] if isinstance(v, list) else v for k, v in data.items()})


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) and b (M, 4), x1 y1 x2 y2."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=-1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def match_people(gt_boxes: np.ndarray, det_boxes: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Optimal one-to-one matching of annotated and detected people by box IoU (scipy's Hungarian solver)."""
    from scipy.optimize import linear_sum_assignment

    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return []
    iou = _box_iou(gt_boxes, det_boxes)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


def error_statistics(pairs: list[tuple[np.ndarray, np.ndarray, float]], annotated: int) -> NoiseCalibration:
    """Statistics from matched (ground truth (17,3), detection (17,3), person size px) pairs."""
    flip = list(COCO17_FLIP)
    rel_err, conf, joint_idx, swaps, pair_count = [], [], [], 0, 0
    for gt, det, size in pairs:
        labelled = gt[:, 2] > 0
        err = np.linalg.norm(det[:, :2] - gt[:, :2], axis=-1) / size
        swapped_err = np.linalg.norm(det[:, :2] - gt[flip, :2], axis=-1) / size
        for j in np.flatnonzero(labelled):
            rel_err.append(err[j])
            conf.append(det[j, 2])
            joint_idx.append(j)
        for j in range(len(COCO17_JOINTS)):
            if flip[j] > j and labelled[j] and labelled[flip[j]] and det[j, 2] >= 0.3:
                pair_count += 1
                swaps += int(swapped_err[j] + swapped_err[flip[j]] < err[j] + err[flip[j]])
    rel_err, conf, joint_idx = np.asarray(rel_err), np.asarray(conf), np.asarray(joint_idx)
    detected = conf >= 0.3
    per_joint = [float(np.median(rel_err[(joint_idx == j) & detected])) if np.any((joint_idx == j) & detected) else float("nan")
                 for j in range(len(COCO17_JOINTS))]  # fmt: skip
    bins = np.digitize(conf, CONF_BINS) - 1
    by_conf = [float(np.median(rel_err[bins == b])) if np.any(bins == b) else float("nan") for b in range(len(CONF_BINS) - 1)]
    share = [float(np.mean(bins == b)) for b in range(len(CONF_BINS) - 1)]
    return NoiseCalibration(
        people=len(pairs), joints=int(len(rel_err)), joint_error_median=per_joint, conf_bins=list(CONF_BINS),
        error_by_conf=by_conf, share_by_conf=share, miss_rate=float(np.mean(~detected)) if len(conf) else 0.0,
        swap_rate=swaps / max(pair_count, 1), person_recall=len(pairs) / max(annotated, 1),
    )  # fmt: skip


def calibrate_detector(coco_json: Path, detector) -> NoiseCalibration:
    """Run `detector` (pose2d.PoseDetector) on every image of a COCO keypoint file and measure its errors."""
    from camerapose_cli.coco import read_coco_keypoints
    from camerapose_cli.video import iter_frame_batches, probe

    data = json.loads(Path(coco_json).read_text())
    people = read_coco_keypoints(coco_json, min_keypoints=1)
    boxes = {a["id"]: a["bbox"] for a in data["annotations"]}
    pairs = []
    for image in sorted(set(people.image)):
        rows = [i for i, p in enumerate(people.image) if p == image]
        gt_boxes = np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in (boxes[people.annotation_id[i]] for i in rows)])
        info = probe(image)
        geometry = detector.geometry(info.width, info.height)
        batch = next(iter_frame_batches(info, 1, geometry.resized))
        dets = detector.detect(batch.frames, geometry)[0]
        for g, d in match_people(gt_boxes, dets.boxes):
            size = float(np.sqrt(np.prod(gt_boxes[g, 2:] - gt_boxes[g, :2])))
            pairs.append((people.keypoints[rows[g]], dets.keypoints[d], size))
    return error_statistics(pairs, len(people.keypoints))
