"""The export stage on real Bandai mocap filmed by a tilted, rolled camera (exact 3D, so that the world frame and
the files are checked apart from the lifter), and end to end on a lifted shared video."""

from __future__ import annotations

import json
import shutil

import c3d
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from camerapose_cli.config import load_preset
from camerapose_cli.core.skeleton import H36M17_JOINTS, NUM_H36M_JOINTS
from camerapose_cli.export.evaluate import film_tilted, gravity_error_deg
from camerapose_cli.export.rig import RIG, fit_bone_lengths, fitted_joints
from camerapose_cli.export.world import estimate_world_frame
from camerapose_cli.io.bvh import parse_bvh
from camerapose_cli.io.mocap import load_mocap
from camerapose_cli.io.schema import KEYPOINTS3D_SCHEMA, keypoints3d_table, read_metadata

pytestmark = pytest.mark.slow
FPS = 30.0
TURN = "dataset-2_walk-turn-left_normal"  # a clip whose feet cover an area of the floor (102 frames)
WALK = "dataset-1_walk_not-confident"  # 481 frames


def clip_points(mocap, name_start: str, frames: int) -> np.ndarray:
    """The first `frames` frames of the first clip named `name_start...` that has that many."""
    ends = [*mocap.starts[1:], len(mocap.points)]
    clip = next(
        i for i, n in enumerate(mocap.names) if n.startswith(name_start) and ends[i] - mocap.starts[i] >= frames
    )
    return mocap.points[mocap.starts[clip] : mocap.starts[clip] + frames]


def write_lifted_table(path, tracks: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """A keypoints3d table as `lift` writes it from camera-frame joints per track: {id: (frames, joints)}."""
    frames = np.concatenate([f for f, _ in tracks.values()])
    joints = np.concatenate([j for _, j in tracks.values()]).astype(np.float32)
    n = len(frames)
    root = joints[:, 0].copy()
    columns = {
        "video": np.full(n, path.name[: -len(".parquet")], object),
        "frame": frames,
        "time_s": frames / FPS,
        "track_id": np.concatenate([np.full(len(f), t) for t, (f, _) in tracks.items()]),
        "kp3d_x": joints[..., 0] - root[:, None, 0],
        "kp3d_y": joints[..., 1] - root[:, None, 1],
        "kp3d_z": joints[..., 2] - root[:, None, 2],
        "root_cam": root,
        "focal_px": np.full(n, 1000.0),
        "principal_px": np.zeros((n, 2)),
        "cam_depth_ratio": np.ones(n),
        "cam_root_xy": np.zeros((n, 2)),
        "reproj_err_px": np.zeros(n),
        "lifter_model": np.full(n, "single", object),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(keypoints3d_table(columns, KEYPOINTS3D_SCHEMA), str(path))


@pytest.fixture(scope="module")
def mocap_run(tmp_path_factory, bandai):
    """RUN/keypoints3d/walk.mp4.parquet: track 1 a 240-frame walk with a 5-frame gap, track 2 another clip with a
    40-frame gap (two parts), track 3 too short, NaN rows in track 2; filmed 15° down, rolled 5°."""
    walk = clip_points(bandai, WALK, 240)[:, :NUM_H36M_JOINTS]
    other = clip_points(bandai, "dataset-2_walk_elderly", 200)[:, :NUM_H36M_JOINTS]
    view = film_tilted(np.concatenate([walk, other]), 15.0, 5.0, 5.0, 30.0, 0.08)
    cam_walk, cam_other = view.camera_joints[: len(walk)], view.camera_joints[len(walk) :]
    keep = np.r_[0:100, 105:240]
    other_frames = np.r_[0:80, 120:200]
    cam_other = cam_other[other_frames].copy()
    cam_other[10:12] = np.nan
    run = tmp_path_factory.mktemp("export") / "run"
    tracks = {1: (keep, cam_walk[keep]), 2: (other_frames, cam_other), 3: (np.arange(10), cam_walk[:10])}
    write_lifted_table(run / "keypoints3d" / "walk.mp4.parquet", tracks)
    return run, view, walk


def test_world_frame_finds_gravity_and_the_floor(bandai):
    cfg = load_preset("default").export
    walk = clip_points(bandai, TURN, 100)
    for tilt, roll in ((0.0, 0.0), (30.0, 10.0)):
        view = film_tilted(walk, tilt, roll, 4.0, 60.0, cfg.ankle_height_m)
        frame = estimate_world_frame(view.camera_joints[:, :NUM_H36M_JOINTS].astype(np.float64), cfg)
        assert frame.method == "floor plane"
        assert gravity_error_deg(frame, view) < 1.0
        assert abs(frame.camera_height_m - view.camera_height_m) < 0.03
        world = frame.to_world(view.camera_joints[:, :NUM_H36M_JOINTS])
        assert abs(np.median(world[:, [3, 6], 1].min(1)) - cfg.ankle_height_m) < 0.01


def test_bvh_round_trip_and_track_parts(mocap_run, bandai, tmp_path):
    run, view, _ = mocap_run
    result = run_cli("export", str(run), "--format", "bvh", "--json")
    assert result.returncode == 0, result.stderr
    assert "track 3: 10 frames, fewer than --min-frames 30; not exported" in result.stderr
    assert "track 2: 2 rows without finite joints left out" in result.stderr
    out = run / "export" / "bvh"
    assert sorted(p.name for p in out.glob("*.bvh")) == [
        "walk.mp4.track1.bvh",
        "walk.mp4.track2.part1.bvh",
        "walk.mp4.track2.part2.bvh",
    ]
    world_table = run / "keypoints3d_world" / "walk.mp4.parquet"
    meta = read_metadata(world_table)
    tracks = {(t["track_id"], t["part"]): t for t in json.loads(meta["tracks"])}
    assert tracks[(1, 1)]["frames"] == 240 and tracks[(1, 1)]["interpolated_frames"] == 5
    assert tracks[(2, 1)]["frames"] == 80 and tracks[(2, 2)]["frames"] == 80
    assert np.isfinite(tracks[(1, 1)]["foot_skate_mm_per_frame"])

    table = pq.read_table(world_table).to_pandas()
    one = table[table.track_id == 1].sort_values("frame")
    world = np.stack([np.stack(one[f"kp3d_world_{a}"].to_numpy()) for a in "xyz"], -1)
    motion = parse_bvh((out / "walk.mp4.track1.bvh").read_text())
    assert len(motion.motion) == 240 and motion.frame_time == pytest.approx(1 / FPS, rel=1e-4)
    positions = motion.forward_kinematics()[0] / 100.0  # centimetres
    have = one.frame.to_numpy()  # the rows that were not interpolated
    joint_of = {j.name: H36M17_JOINTS.index(j.at) for j in RIG}
    fk = np.stack([positions[have, motion.names.index(name)] for name in joint_of], 1)
    fitted = fitted_joints(world, fit_bone_lengths(world))[:, list(joint_of.values())]
    assert np.median(np.linalg.norm(fk - fitted, axis=-1)) < 0.010
    # Mocap bones are rigid, so the fitted skeleton is the exported joints themselves, up to left-right averaging.
    assert np.median(np.linalg.norm(fk - world[:, list(joint_of.values())], axis=-1)) < 0.010

    # `train --mocap` and `eval --mocap` read it with no joint map (both through io.mocap.load_mocap).
    read_back = load_mocap(out)
    assert len(read_back.points) == 240 + 80 + 80
    evaluated = run_cli("eval", "--mocap", str(out), "--split", "all", "--stride", "4", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["poses"] == 100
    rerun = run_cli("export", str(run), "--format", "bvh", "--json")
    assert json.loads(rerun.stdout)["skipped"] == 1


@pytest.mark.filterwarnings("ignore:No analog data found in file:UserWarning")  # the c3d reader; we write none
def test_trc_c3d_and_csv_hold_the_world_joints(mocap_run):
    run, _, _ = mocap_run
    for fmt in ("trc", "c3d", "csv"):
        result = run_cli("export", str(run), "--format", fmt, "--min-frames", "5")
        assert result.returncode == 0, result.stderr
    table = pq.read_table(run / "keypoints3d_world" / "walk.mp4.parquet").to_pandas()
    one = table[table.track_id == 3].sort_values("frame")
    world = np.stack([np.stack(one[f"kp3d_world_{a}"].to_numpy()) for a in "xyz"], -1)

    trc = (run / "export" / "trc" / "walk.mp4.track3.trc").read_text().splitlines()
    assert trc[0].startswith("PathFileType\t4\t(X/Y/Z)")
    header = dict(zip(trc[1].split("\t"), trc[2].split("\t")))
    assert header["Units"] == "m" and float(header["DataRate"]) == pytest.approx(FPS, rel=1e-3)
    assert int(header["NumFrames"]) == 10 and int(header["NumMarkers"]) == NUM_H36M_JOINTS
    assert trc[3].split("\t")[2] == "pelvis"
    first = np.array(trc[6].split("\t")[2:], float).reshape(NUM_H36M_JOINTS, 3)
    np.testing.assert_allclose(first, world[0], atol=1e-5)

    with open(run / "export" / "c3d" / "walk.mp4.track3.c3d", "rb") as handle:
        reader = c3d.Reader(handle)
        assert [label.strip() for label in reader.point_labels] == list(H36M17_JOINTS)
        assert reader.point_rate == pytest.approx(FPS, rel=1e-3)
        points = np.stack([p[:, :3] for _, p, _ in reader.read_frames()])
    np.testing.assert_allclose(points / 1000.0, world, atol=1e-4)

    csv = pd.read_csv(run / "export" / "csv" / "walk.mp4.track3.csv")
    assert list(csv.frame) == list(range(10))
    np.testing.assert_allclose(csv[["l_ankle_x", "l_ankle_y", "l_ankle_z"]].to_numpy(), world[:, 6], atol=1e-5)


def test_export_of_a_lifted_shared_video(extract_run, tmp_path):
    run, _ = extract_run
    lifted = tmp_path / "lifted"
    assert run_cli("lift", str(run), "--out", str(lifted), "--json").returncode == 0
    result = run_cli("export", str(lifted), "--format", "csv", "--min-frames", "20", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failed"] == 0 and summary["done"] == summary["inputs"] == 3
    csv = pd.read_csv(lifted / "export" / "csv" / "courtyard_dribble_40f.mp4.track1.csv")
    assert len(csv) == 40
    feet = csv[["l_ankle_y", "r_ankle_y"]].min(axis=1)
    assert abs(feet.median() - load_preset("default").export.ankle_height_m) < 0.05  # standing on the floor
    assert "fewer than --min-frames 20" in result.stderr  # the 5-frame clips


def test_export_needs_lifted_tables(extract_run, tmp_path):
    tables = extract_run[0] / "keypoints2d"
    run = tmp_path / "run"
    shutil.copytree(tables, run / "keypoints2d")
    result = run_cli("export", str(run), "--format", "bvh")
    assert result.returncode == 2
    assert "no keypoints3d tables" in result.stderr
    assert run_cli("export", str(run), "--format", "fbx").returncode == 2


def test_pinning_the_feet_stops_them_sliding_and_keeps_the_pose(mocap_run, tmp_path):
    run, _, _ = mocap_run
    plain, pinned = tmp_path / "plain", tmp_path / "pinned"
    assert run_cli("export", str(run), "--format", "csv", "--out", str(plain)).returncode == 0
    result = run_cli("export", str(run), "--format", "csv", "--out", str(pinned), "--pin-feet")
    assert result.returncode == 0, result.stderr
    tracks = {t["file"]: t for t in json.loads(read_metadata(run / "keypoints3d_world" / "walk.mp4.parquet")["tracks"])}
    walk = tracks["walk.mp4.track1.csv"]
    assert walk["foot_skate_mm_per_frame"] < 0.75 * walk["foot_skate_before_pinning"]  # mocap ankles roll a little
    a, b = (pd.read_csv(folder / "walk.mp4.track1.csv") for folder in (plain, pinned))
    np.testing.assert_allclose(a.filter(like="_y"), b.filter(like="_y"), atol=1e-6)  # heights unchanged
    relative = [
        frame[["l_wrist_x", "l_wrist_z"]].to_numpy() - frame[["pelvis_x", "pelvis_z"]].to_numpy() for frame in (a, b)
    ]
    np.testing.assert_allclose(relative[0], relative[1], atol=1e-5)  # the pose itself unchanged
