"""COCO person-keypoint annotations (JSON) as keypoint arrays: real in-the-wild 2D labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camerapose_cli.core.skeleton import NUM_COCO_JOINTS
from camerapose_cli.errors import InputError


@dataclass
class CocoPeople:
    # float32 (N, 17, 3): x, y, confidence (1 where labelled, 0 where visibility is 0). COCO stores an unlabelled
    # keypoint at 0, 0, an image corner that the lifter would read as a position; here it sits at the centre of the
    # labelled ones' box instead.
    keypoints: np.ndarray
    width: np.ndarray  # int32 (N,) image size
    height: np.ndarray
    image: list[Path]  # the image file of each person
    annotation_id: np.ndarray  # int64 (N,)


def read_coco_keypoints(path: Path, min_keypoints: int = 1) -> CocoPeople:
    """Every person annotation with at least `min_keypoints` labelled keypoints. Visibility 0 means unlabelled."""
    try:
        data = json.loads(Path(path).read_text())
        images = {im["id"]: im for im in data["images"]}
        annotations = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a COCO keypoint annotation file ({exc})") from None
    rows, widths, heights, files, ids = [], [], [], [], []
    for ann in annotations:
        if ann.get("iscrowd", 0) or "keypoints" not in ann:
            continue
        kp = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
        if kp.shape[0] != NUM_COCO_JOINTS:
            raise InputError(f"{path}: annotation {ann.get('id')} has {kp.shape[0]} keypoints, expected 17")
        labelled = kp[:, 2] > 0
        if labelled.sum() < max(min_keypoints, 1):
            continue
        kp[:, 2] = labelled.astype(np.float32)
        box = kp[labelled, :2]
        kp[~labelled, :2] = (box.min(0) + box.max(0)) / 2
        image = images.get(ann["image_id"])
        if image is None:
            raise InputError(f"{path}: annotation {ann.get('id')} names a missing image {ann['image_id']}")
        rows.append(kp)
        widths.append(image["width"])
        heights.append(image["height"])
        files.append(Path(path).parent / image["file_name"])
        ids.append(ann.get("id", len(ids)))
    if not rows:
        raise InputError(f"{path}: no person keypoint annotations")
    return CocoPeople(
        np.stack(rows), np.asarray(widths, np.int32), np.asarray(heights, np.int32), files, np.asarray(ids, np.int64)
    )
