"""BVH forward kinematics, skeleton mapping for several naming conventions, and the real Bandai data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARCHIVE, SHARED_DATA, require_shared, run_cli

from camerapose_cli.config import MocapSection
from camerapose_cli.core.skeleton import BODY_INDEX, SPINE_CHAIN_FRACTION
from camerapose_cli.errors import InputError
from camerapose_cli.io.bvh import parse_bvh
from camerapose_cli.io.mocap import (
    bare_joint_names,
    body_points_from_bvh,
    distinct_folders,
    iter_bvh_sources,
    load_mocap,
    point_along_chain,
    resolve_joint_names,
)
from camerapose_cli.training.splits import clip_content, split_clips

THREE_JOINTS = """HIERARCHY
ROOT base
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT middle
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT tip
    {
      OFFSET 0 5 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 1 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 0 0 0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 0 0 0 90 0
"""


def test_three_joint_forward_kinematics_by_hand():
    motion = parse_bvh(THREE_JOINTS, "three")
    assert motion.names == ["base", "middle", "tip"]
    assert motion.frame_time == pytest.approx(1 / 30, rel=1e-5)
    positions, rotations = motion.forward_kinematics()
    np.testing.assert_allclose(positions[0], [[0, 0, 0], [0, 10, 0], [0, 15, 0]], atol=1e-9)
    # Frame 1: root moved to (1,2,3) and turned 90 degrees about Z: +Y maps to -X.
    np.testing.assert_allclose(positions[1, 0], [1, 2, 3], atol=1e-9)
    np.testing.assert_allclose(positions[1, 1], [1 - 10, 2, 3], atol=1e-9)
    np.testing.assert_allclose(positions[1, 2], [1 - 15, 2, 3], atol=1e-9)
    # The tip's own 90 degrees about X comes first (intrinsic ZXY): its +Y goes to +Z, which Z leaves alone.
    np.testing.assert_allclose(rotations[1, 2] @ np.array([0, 1, 0]), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(rotations[1, 1] @ np.array([0, 1, 0]), [-1, 0, 0], atol=1e-9)


def test_malformed_bvh_is_a_clear_error():
    with pytest.raises(InputError, match="not a BVH file"):
        parse_bvh("hello", "x.bvh")
    with pytest.raises(InputError, match="truncated motion"):
        parse_bvh(THREE_JOINTS.replace("1 2 3 90 0 0 0 0 0 0 90 0\n", "1 2 3\n"), "cut.bvh")


def t_pose_bvh(names: dict[str, str], unit: float, z_up: bool = False, frames: int = 3) -> str:
    """A standing T-pose skeleton with the given joint names, in `unit` per metre, optionally Z up."""
    layout = {  # point: (parent, offset in metres, x left? no: x = person's left, y up, z forward)
        "pelvis": (None, (0, 1.0, 0)),
        "l_hip": ("pelvis", (0.12, -0.05, 0)),
        "l_knee": ("l_hip", (0, -0.45, 0)),
        "l_ankle": ("l_knee", (0, -0.42, 0)),
        "r_hip": ("pelvis", (-0.12, -0.05, 0)),
        "r_knee": ("r_hip", (0, -0.45, 0)),
        "r_ankle": ("r_knee", (0, -0.42, 0)),
        "spine": ("pelvis", (0, 0.25, 0)),
        "thorax": ("spine", (0, 0.25, 0)),
        "head": ("thorax", (0, 0.1, 0)),
        "l_shoulder": ("thorax", (0.17, 0, 0)),
        "l_elbow": ("l_shoulder", (0.28, 0, 0)),
        "l_wrist": ("l_elbow", (0.25, 0, 0)),
        "r_shoulder": ("thorax", (-0.17, 0, 0)),
        "r_elbow": ("r_shoulder", (-0.28, 0, 0)),
        "r_wrist": ("r_elbow", (-0.25, 0, 0)),
    }

    def offset(v):
        x, y, z = (c * unit for c in v)
        return (x, -z, y) if z_up else (x, y, z)

    lines, count = ["HIERARCHY"], 0

    def emit(point: str, depth: int) -> None:
        nonlocal count
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {names[point]}")
        lines.append(pad + "{")
        lines.append(pad + "  OFFSET " + " ".join(f"{c:.4f}" for c in offset(layout[point][1])))
        if depth == 0:
            lines.append(pad + "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
            count += 6
        else:
            lines.append(pad + "  CHANNELS 3 Zrotation Xrotation Yrotation")
            count += 3
        for child, (parent, _) in layout.items():
            if parent == point:
                emit(child, depth + 1)
        lines.append(pad + "}")

    emit("pelvis", 0)
    root = " ".join(f"{c:.4f}" for c in offset((0, 1.0, 0)))
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    lines += [root + " 0" * (count - 3)] * frames
    return "\n".join(lines) + "\n"


CMU = {
    "pelvis": "Hips",
    "l_hip": "LeftUpLeg",
    "l_knee": "LeftLeg",
    "l_ankle": "LeftFoot",
    "r_hip": "RightUpLeg",
    "r_knee": "RightLeg",
    "r_ankle": "RightFoot",
    "spine": "Spine",
    "thorax": "Neck",
    "head": "Head",
    "l_shoulder": "LeftArm",
    "l_elbow": "LeftForeArm",
    "l_wrist": "LeftHand",
    "r_shoulder": "RightArm",
    "r_elbow": "RightForeArm",
    "r_wrist": "RightHand",
}
ANATOMICAL = {
    **CMU,
    "l_hip": "LeftHip",
    "l_knee": "LeftKnee",
    "l_ankle": "LeftAnkle",
    "r_hip": "RightHip",
    "r_knee": "RightKnee",
    "r_ankle": "RightAnkle",
    "l_shoulder": "LeftShoulder",
    "l_elbow": "LeftElbow",
    "l_wrist": "LeftWrist",
    "r_shoulder": "RightShoulder",
    "r_elbow": "RightElbow",
    "r_wrist": "RightWrist",
}


LIMB_JOINTS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
UNITY = {**CMU, "l_hip": "LeftUpperLeg", "l_knee": "LeftLowerLeg", "r_hip": "RightUpperLeg", "r_knee": "RightLowerLeg"}
UNITY |= {"l_shoulder": "LeftUpperArm", "l_elbow": "LeftLowerArm", "r_shoulder": "RightUpperArm"}
UNITY |= {"r_elbow": "RightLowerArm", "spine": "Chest"}
MIXAMO = {point: f"mixamorig:{name}" for point, name in CMU.items()}
UNREAL = {
    "pelvis": "pelvis",
    "spine": "spine_01",
    "thorax": "neck_01",
    "head": "head",
    **{f"{s}_{point}": f"{joint}_{s}" for s in "lr" for point, joint in (("hip", "thigh"), ("knee", "calf"))},
    **{f"{s}_ankle": f"foot_{s}" for s in "lr"},
    **{
        f"{s}_{point}": f"{joint}_{s}"
        for s in "lr"
        for point, joint in (("shoulder", "upperarm"), ("elbow", "lowerarm"))
    },
    **{f"{s}_wrist": f"hand_{s}" for s in "lr"},
}
BIPED = {  # 3ds Max Biped: names with spaces, one prefix on every joint
    "pelvis": "Bip01 Pelvis",
    "spine": "Bip01 Spine",
    "thorax": "Bip01 Neck",
    "head": "Bip01 Head",
    **{
        f"{s}_{point}": f"Bip01 {s.upper()} {joint}"
        for s in "lr"
        for point, joint in (
            ("hip", "Thigh"),
            ("knee", "Calf"),
            ("ankle", "Foot"),
            ("shoulder", "UpperArm"),
            ("elbow", "Forearm"),
            ("wrist", "Hand"),
        )
    },
}
SMPL = {"pelvis": "pelvis", "spine": "spine1", "thorax": "neck", "head": "head"}
SMPL |= {f"{s}_{joint}": f"{side}_{joint}" for s, side in (("l", "left"), ("r", "right")) for joint in LIMB_JOINTS}
NO_SPINE_JOINT = {**CMU, "spine": "Torso"}  # not a known name: the spine point comes from the chain
NAMINGS = {
    "cmu": CMU,
    "anatomical": ANATOMICAL,
    "unity": UNITY,
    "mixamo": MIXAMO,
    "unreal": UNREAL,
    "biped": BIPED,
    "smpl": SMPL,
    "no-spine-name": NO_SPINE_JOINT,
}


@pytest.mark.parametrize("names", NAMINGS.values(), ids=NAMINGS.keys())
@pytest.mark.parametrize(
    "unit,z_up", [(100.0, False), (1.0, False), (1000.0, False), (100 / 2.54, True)], ids=["cm", "m", "mm", "inch-zup"]
)
def test_other_skeletons_map_to_body_points(names, unit, z_up):
    body = body_points_from_bvh(parse_bvh(t_pose_bvh(names, unit, z_up)))
    frame = body[0]
    np.testing.assert_allclose(frame[BODY_INDEX["pelvis"]], [0, 1.0, 0], atol=1e-3)  # metres, Y up
    np.testing.assert_allclose(frame[BODY_INDEX["l_hip"]] - frame[BODY_INDEX["r_hip"]], [0.24, 0, 0], atol=1e-3)
    np.testing.assert_allclose(frame[BODY_INDEX["l_wrist"]], [0.70, 1.5, 0], atol=1e-3)
    np.testing.assert_allclose(frame[BODY_INDEX["l_knee"]], [0.12, 0.5, 0], atol=1e-3)
    np.testing.assert_allclose(frame[BODY_INDEX["r_elbow"]], [-0.45, 1.5, 0], atol=1e-3)
    np.testing.assert_allclose(frame[BODY_INDEX["spine"]], [0, 1.0 + SPINE_CHAIN_FRACTION * 0.5, 0], atol=1e-3)
    # The face looks forward (+z for this skeleton) and the head top is above the nose.
    assert frame[BODY_INDEX["neck_nose"], 2] > 0.05
    assert frame[BODY_INDEX["head"], 1] > frame[BODY_INDEX["neck_nose"], 1]
    assert frame[BODY_INDEX["l_ear"], 0] > 0 > frame[BODY_INDEX["r_ear"], 0]


def test_joint_map_override_and_missing_joints():
    renamed = {**CMU, "l_elbow": "MyElbowL"}
    text = t_pose_bvh(renamed, 100.0)
    with pytest.raises(InputError, match="l_elbow"):
        body_points_from_bvh(parse_bvh(text))
    body = body_points_from_bvh(parse_bvh(text), {"l_elbow": "MyElbowL"})
    np.testing.assert_allclose(body[0, BODY_INDEX["l_elbow"]], [0.45, 1.5, 0], atol=1e-3)
    with pytest.raises(InputError, match="unknown body point"):
        resolve_joint_names(["Hips"], {"tail": "Tail"})


def test_spine_point_sits_at_a_fixed_share_of_the_spine_whatever_the_rig_names():
    text = t_pose_bvh(CMU, 100.0)  # Hips -> Spine (0.25 m) -> Neck (0.25 m)
    body = body_points_from_bvh(parse_bvh(text))
    pelvis, spine = body[0, BODY_INDEX["pelvis"]], body[0, BODY_INDEX["spine"]]
    np.testing.assert_allclose(spine - pelvis, [0, SPINE_CHAIN_FRACTION * 0.5, 0], atol=1e-4)
    # A joint map that names the spine joint gets that joint.
    named = body_points_from_bvh(parse_bvh(text), {"spine": "Spine"})
    np.testing.assert_allclose(named[0, BODY_INDEX["spine"]] - pelvis, [0, 0.25, 0], atol=1e-4)


def test_point_along_chain_by_hand():
    positions = np.array([[[0, 0, 0], [0, 1, 0], [0, 1, 3], [5, 5, 5]]], float)  # base, mid, tip, unrelated
    parents = [-1, 0, 1, -1]
    np.testing.assert_allclose(point_along_chain(positions, parents, 0, 2, 0.5), [[0, 1, 1]])
    np.testing.assert_allclose(point_along_chain(positions, parents, 0, 2, 0.0), [[0, 0, 0]])
    np.testing.assert_allclose(point_along_chain(positions, parents, 0, 2, 1.0), [[0, 1, 3]])
    assert point_along_chain(positions, parents, 3, 2, 0.5) is None  # 2 does not descend from 3


def spine_share(points: np.ndarray) -> float:
    """Median of pelvis-to-spine over pelvis-to-spine-to-thorax distances."""
    lower = np.linalg.norm(points[:, BODY_INDEX["spine"]] - points[:, BODY_INDEX["pelvis"]], axis=-1)
    upper = np.linalg.norm(points[:, BODY_INDEX["thorax"]] - points[:, BODY_INDEX["spine"]], axis=-1)
    return float(np.median(lower / (lower + upper)))


@pytest.mark.slow
def test_bandai_and_character_creator_spines_are_the_same_point():
    """The CC rig's Spine01 joint sits 23% up its spine, Bandai's Chest 60%: mapped by name they differed by 20 cm."""
    bandai = load_mocap(require_shared(SHARED_DATA / "mocap" / "bandai_motion.tar.xz"))
    cc = load_mocap(require_shared(SHARED_DATA / "mocap" / "cmu_cc_validation.tar.xz"))
    walk = bandai.clip("dataset-1_walk_normal_001")
    for points in (walk, cc.points):
        assert spine_share(points) == pytest.approx(SPINE_CHAIN_FRACTION, abs=0.03)


def test_reading_a_folder_of_bvh(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.bvh").write_text(t_pose_bvh(CMU, 100.0, frames=4))
    (tmp_path / "two.bvh").write_text(t_pose_bvh(ANATOMICAL, 100.0, frames=2))
    sources = list(iter_bvh_sources(tmp_path))
    assert [s.name for s in sources] == ["one", "two"]
    assert sources[0].origin == str(tmp_path / "a" / "one.bvh")
    mocap = load_mocap(tmp_path, use_cache=False)
    assert mocap.names == ["one", "two"] and mocap.points.shape == (6, 21, 3)
    assert mocap.clip("two").shape == (2, 21, 3)


def test_splits_hold_out_whole_clips_and_contents():
    names = [
        f"dataset-2_{c}_{s}_{i:03d}" for c in ("walk", "run", "wave-left-hand") for s in ("a", "b") for i in range(40)
    ]
    names += ["dataset-1_dance-short_normal_001", "dataset-1_punch_normal_001"]
    cfg = MocapSection(holdout_contents=("dance-short", "punch"), test_fraction=0.1, val_fraction=0.05, unit="auto")
    splits = split_clips(names, cfg)
    assert splits["test_unseen"] == ["dataset-1_dance-short_normal_001", "dataset-1_punch_normal_001"]
    assert sorted(sum(splits.values(), [])) == sorted(names)  # a partition of whole clips
    assert 0.03 < len(splits["test_seen"]) / len(names) < 0.2
    assert split_clips(list(reversed(names)), cfg) == splits  # stable
    assert clip_content("dataset-1_walk-left_tired_001") == "walk-left"


@pytest.mark.slow
def test_bandai_mocap_reads_from_the_archive():
    archive = require_shared(SHARED_DATA / "mocap" / "bandai_motion.tar.xz")
    mocap = load_mocap(archive)
    assert len(mocap.names) > 3000 and len(mocap.points) > 400_000
    walk = mocap.clip("dataset-1_walk_normal_001")
    hip_width = np.linalg.norm(walk[:, BODY_INDEX["l_hip"]] - walk[:, BODY_INDEX["r_hip"]], axis=-1)
    shoulder_width = np.linalg.norm(walk[:, BODY_INDEX["l_shoulder"]] - walk[:, BODY_INDEX["r_shoulder"]], axis=-1)
    assert 0.11 < hip_width.mean() < 0.15 and 0.18 < shoulder_width.mean() < 0.23  # the figures
    # Walking forward: the nose leads the pelvis along the direction of travel.
    travel = walk[-1, 0] - walk[0, 0]
    travel[1] = 0
    lead = walk[:, BODY_INDEX["neck_nose"]] - walk[:, BODY_INDEX["thorax"]]
    assert (lead @ travel > 0).mean() > 0.95
    assert 1.4 < walk[:, BODY_INDEX["head"], 1].mean() - walk[:, :, 1].min() < 2.0  # standing height, metres


def test_train_refuses_a_bad_joint_map_with_one_line(tmp_path):
    clip = tmp_path / "clip.bvh"
    clip.write_text(t_pose_bvh(CMU, 100.0))
    joint_map = tmp_path / "map.toml"
    joint_map.write_text('[joints]\ntail = "Tail"\n')
    result = run_cli("train", "--mocap", str(clip), "--joint-map", str(joint_map), "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()] and "unknown body point 'tail'" in result.stderr
    )
    joint_map.write_text("[joints\n")
    result = run_cli("train", "--mocap", str(clip), "--joint-map", str(joint_map), "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "not a readable joint-map TOML file" in result.stderr


def test_the_preset_unit_overrides_the_guess():
    text = t_pose_bvh(CMU, 1.0)  # a body in metres
    guessed = body_points_from_bvh(parse_bvh(text))
    as_cm = body_points_from_bvh(parse_bvh(text), unit="cm")
    joints = [BODY_INDEX[p] for p in ("pelvis", "l_hip", "r_knee", "l_wrist", "r_shoulder", "thorax")]
    np.testing.assert_allclose(as_cm[:, joints], guessed[:, joints] * 0.01, atol=1e-6)


def test_mocap_cache_follows_the_reader_code(tmp_path, monkeypatch):
    import camerapose_cli.io.mocap as mocap

    (tmp_path / "bvh").mkdir()
    (tmp_path / "bvh" / "a.bvh").write_text(t_pose_bvh(CMU, 100.0))
    monkeypatch.setenv("CAMERAPOSE_CACHE", str(tmp_path / "cache"))
    load_mocap(tmp_path / "bvh")
    load_mocap(tmp_path / "bvh")
    assert len(list((tmp_path / "cache").glob("mocap-*.npz"))) == 1  # the second read came from the cache
    monkeypatch.setattr(mocap, "_reader_code_digest", lambda: "the reader changed")
    load_mocap(tmp_path / "bvh")
    assert len(list((tmp_path / "cache").glob("mocap-*.npz"))) == 2  # a changed reader does not reuse it


def test_bare_joint_names_drop_namespaces_and_shared_prefixes_only_at_a_separator():
    assert bare_joint_names(["Bip01", "Bip01 Pelvis", "Bip01 L Thigh"]) == ["", "Pelvis", "L Thigh"]
    assert bare_joint_names(["Character1_Hips", "Character1_LeftUpLeg"]) == ["Hips", "LeftUpLeg"]
    assert bare_joint_names(["mixamorig:Hips", "rig|mixamorig:Spine"]) == ["Hips", "Spine"]
    # "Left" is shared but is not a prefix that ends at a separator: the names stay whole.
    assert bare_joint_names(["LeftArm", "LeftLeg"]) == ["LeftArm", "LeftLeg"]
    assert bare_joint_names(["CC_Base_L_Thigh", "CC_Base_L_Calf"]) == ["Thigh", "Calf"]


@pytest.mark.parametrize("rename", ["mixamorig:{}", "Bip01 {}", "Character1_{}", "{}"])
def test_a_real_clip_under_other_exporters_joint_names_gives_the_same_body(rename):
    """A real Bandai clip with its joints renamed as a Maya namespace, a Biped prefix (names with spaces) or a
    MotionBuilder character prefix would be: the body points do not change."""
    source = next(iter_bvh_sources(require_shared(ARCHIVE)))
    original = body_points_from_bvh(parse_bvh(source.text, source.origin))
    named = re.sub(r"^(\s*(?:ROOT|JOINT)\s+)(\S+)", lambda m: m[1] + rename.format(m[2]), source.text, flags=re.M)
    renamed = parse_bvh(named, source.origin)
    assert renamed.names[1] == rename.format("Hips")
    np.testing.assert_allclose(body_points_from_bvh(renamed), original, atol=1e-6)


def test_a_broken_clip_costs_one_line_and_the_others_are_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAMERAPOSE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "bvh"
    folder.mkdir()
    (folder / "good.bvh").write_text(t_pose_bvh(CMU, 100.0, frames=4))
    (folder / "cut.bvh").write_text(t_pose_bvh(CMU, 100.0)[:-40])
    (folder / "odd_rig.bvh").write_text(t_pose_bvh({**CMU, "l_elbow": "MyElbowL"}, 100.0))
    for _ in range(2):  # read, then from the cache: the same lines
        mocap = load_mocap(folder)
        assert mocap.names == ["good"] and mocap.points.shape == (4, 21, 3)
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2
        assert any(f"{folder / 'cut.bvh'}: truncated motion" in line for line in lines)
        assert any(f"{folder / 'odd_rig.bvh'}: no joint for l_elbow" in line for line in lines)
    with pytest.raises(InputError, match=r"odd_rig.bvh: no joint for l_elbow"):
        load_mocap(folder / "odd_rig.bvh")


def test_clip_folders_keep_only_what_tells_clips_apart(tmp_path):
    assert distinct_folders(["data/walk", "data/run/fast", "data/run/fast"]) == ["walk", "run/fast", "run/fast"]
    assert distinct_folders(["cmu_cc", "cmu_cc"]) == ["", ""]
    assert distinct_folders(["", "a"]) == ["", "a"]
    (tmp_path / "x" / "walk").mkdir(parents=True)
    (tmp_path / "x" / "walk" / "one.bvh").write_text(t_pose_bvh(CMU, 100.0))
    (tmp_path / "x" / "two.bvh").write_text(t_pose_bvh(CMU, 100.0))
    assert load_mocap(tmp_path / "x", use_cache=False).folders == ["walk", ""]
