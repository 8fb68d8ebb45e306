"""Pseudo-label harvesting on hand-made tables, and COCO JSON parsing with visibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from camerapose_cli.config import HarvestSection
from camerapose_cli.errors import InputError
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.io.schema import KeypointTable
from camerapose_cli.training.weak import harvest_table

CFG = HarvestSection(min_joint_conf=0.5, min_joints=10, min_track_frames=3, min_box_height_px=80.0, min_score=0.5)


def table(rows: list[dict]) -> KeypointTable:
    n = len(rows)
    return KeypointTable(
        video=np.full(n, "v.mp4", dtype=object),
        frame=np.array([r["frame"] for r in rows], np.int64),
        time_s=np.zeros(n),
        track_id=np.array([r["track"] for r in rows], np.int64),
        bbox=np.array([[0, 0, 50, r.get("height", 200)] for r in rows], np.float32),
        score=np.array([r.get("score", 0.9) for r in rows], np.float32),
        keypoints=np.stack(
            [np.concatenate([np.full((17, 2), 10.0), np.array(r.get("conf", [0.9] * 17))[:, None]], -1) for r in rows]
        ).astype(np.float32),
        width=np.full(n, 640, np.int32),
        height=np.full(n, 480, np.int32),
        metadata={},
    )


def test_harvest_keeps_confident_rows_and_reports_the_rest():
    rows = [{"frame": f, "track": 1} for f in range(5)]  # a good track
    rows += [{"frame": f, "track": 2} for f in range(2)]  # too short
    rows += [{"frame": f, "track": 3, "height": 40} for f in range(4)]  # too small
    rows += [{"frame": f, "track": 4, "score": 0.2} for f in range(4)]  # low score
    rows += [{"frame": f, "track": 5, "conf": [0.9] * 8 + [0.1] * 9} for f in range(4)]  # few confident joints
    rows += [{"frame": f, "track": 6, "conf": [0.9] * 12 + [0.2] * 5} for f in range(4)]  # kept, 5 joints unlabelled
    kept, report = harvest_table(table(rows), CFG)
    assert sorted(set(kept.track_id.tolist())) == [1, 6]
    assert report.as_dict() == {
        "rows_in": 23,
        "rows_kept": 9,
        "joints_kept": 5 * 17 + 4 * 12,
        "dropped": {"low_score": 4, "small_box": 4, "short_track": 2, "few_confident_joints": 4},
    }
    track6 = kept.keypoints[kept.track_id == 6]
    assert (track6[:, 12:, 2] == 0).all() and (track6[:, :12, 2] > 0).all()


def test_harvest_of_nothing():
    kept, report = harvest_table(table([{"frame": 0, "track": 1}]), CFG)
    assert len(kept) == 0 and report.dropped["short_track"] == 1


def test_coco_json_visibility(tmp_path):
    keypoints = [0.0] * 51
    keypoints[0:3] = [100, 50, 2]  # nose visible
    keypoints[3:6] = [110, 45, 1]  # left eye labelled but occluded: still a label
    keypoints[6:9] = [999, 999, 0]  # right eye unlabelled: left out
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [
            {"id": 1, "image_id": 7, "keypoints": keypoints, "iscrowd": 0, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 7, "keypoints": [0] * 51, "iscrowd": 0, "bbox": [0, 0, 10, 10]},
            {"id": 3, "image_id": 7, "keypoints": keypoints, "iscrowd": 1, "bbox": [0, 0, 10, 10]},
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    people = read_coco_keypoints(path)
    assert people.keypoints.shape == (1, 17, 3) and people.annotation_id.tolist() == [1]
    np.testing.assert_array_equal(people.keypoints[0, :3, 2], [1, 1, 0])
    # Unlabelled coordinates are not kept: the centre of the labelled ones' box, not COCO's 0, 0 (an image corner).
    np.testing.assert_array_equal(people.keypoints[0, 2:, :2], np.tile([[105, 47.5]], (15, 1)))
    assert people.image[0] == tmp_path / "a.jpg" and people.width.tolist() == [640]
    path.write_text("{}")
    with pytest.raises(InputError, match="not a COCO keypoint annotation file"):
        read_coco_keypoints(path)


def test_the_shared_coco_annotations_parse():
    from conftest import SHARED_DATA, require_shared

    people = read_coco_keypoints(require_shared(SHARED_DATA / "coco" / "test_coco.json"))
    assert len(people.keypoints) == 12  # 14 annotations, 2 of them without any labelled keypoint
    assert all(p.is_file() for p in people.image)


def test_weak_samples_from_tables_and_coco(tmp_path):
    from conftest import SHARED_DATA, require_shared

    from camerapose_cli.training.weak import load_weak_2d

    coco = require_shared(SHARED_DATA / "coco" / "test_coco.json")
    run = tmp_path / "run" / "keypoints2d"
    run.mkdir(parents=True)
    rows = [{"frame": f, "track": 1} for f in range(5)] + [{"frame": 0, "track": 2}]
    from camerapose_cli.io.schema import write_parquet

    write_parquet(table(rows).to_arrow(), run / "a.mp4.parquet", {"frames": 5})
    samples, report = load_weak_2d([tmp_path / "run", coco], CFG, fov_deg=60.0)
    assert len(samples) == 5 + 12
    assert samples.source.tolist() == [0] * 5 + [1] * 12
    assert report["sources"][str(tmp_path / "run")]["dropped"]["short_track"] == 1
    assert report["sources"][str(coco)]["people"] == 12
    np.testing.assert_allclose(samples.principal[0], [320, 240])
    assert samples.focal[0] == pytest.approx(320 / np.tan(np.radians(30)))
