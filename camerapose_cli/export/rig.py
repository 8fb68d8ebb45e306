"""A BVH rig for lifted H36M-17 joints: Mixamo/CMU joint names, the track's bone lengths, and joint rotations
by inverse kinematics (each bone's frame from its own direction and a second direction).

Every bone has its own rotating joint, so forward kinematics reproduces every bone's direction exactly and the
joints differ from the lifted ones only by the bone lengths, which are the track's medians with left and right
averaged. Rest pose: a T-pose facing +z, y up, the character's left along +x.

Twists that 3D joints cannot show, and what stands in for them:
- upper and lower leg: the knee's bend plane (the pelvis' left-right axis when the knee is straight);
- upper arm and forearm: the elbow's bend plane (the chest's back-and-up direction when the arm is straight);
- spine, neck and head: the shoulder line (a head turned against the shoulders is not seen: H36M-17 has no
  ears or eyes);
- feet and hands: no rotation of their own (no toe or finger joints).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from camerapose_cli.core.skeleton import H36M17_JOINTS
from camerapose_cli.io.bvh import BvhJoint, BvhMotion

J = {name: i for i, name in enumerate(H36M17_JOINTS)}
X, Y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
STRAIGHT_BLEND = 0.2  # weight of the fallback direction against a bend plane's normal (|normal| = sin of the bend)
FOOT_END = np.array([0.0, -0.06, 0.14])  # end sites, metres in the joint's frame: a foot points forward
HAND_END = 0.08  # a hand continues its forearm
ROOT_CHANNELS = ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
JOINT_CHANNELS = ["Zrotation", "Xrotation", "Yrotation"]
EULER_ORDER = "ZXY"  # intrinsic, as the channels are listed


@dataclass(frozen=True)
class RigJoint:
    name: str
    parent: str | None
    at: str  # the H36M joint it sits on
    toward: str | None  # the H36M joint its bone points to (None: no bone, no rotation of its own)
    rest_axis: np.ndarray  # the bone's direction in the rest pose
    secondary: str  # which second direction fixes the twist (see _secondary)
    rest_secondary: np.ndarray  # that direction in the rest pose


RIG: tuple[RigJoint, ...] = (
    RigJoint("Hips", None, "pelvis", None, X, "up", Y),
    RigJoint("LHipJoint", "Hips", "pelvis", "l_hip", X, "up", Y),
    RigJoint("LeftUpLeg", "LHipJoint", "l_hip", "l_knee", -Y, "l_knee_axis", X),
    RigJoint("LeftLeg", "LeftUpLeg", "l_knee", "l_ankle", -Y, "l_knee_axis", X),
    RigJoint("LeftFoot", "LeftLeg", "l_ankle", None, -Y, "", X),
    RigJoint("RHipJoint", "Hips", "pelvis", "r_hip", -X, "up", Y),
    RigJoint("RightUpLeg", "RHipJoint", "r_hip", "r_knee", -Y, "r_knee_axis", X),
    RigJoint("RightLeg", "RightUpLeg", "r_knee", "r_ankle", -Y, "r_knee_axis", X),
    RigJoint("RightFoot", "RightLeg", "r_ankle", None, -Y, "", X),
    RigJoint("LowerBack", "Hips", "pelvis", "spine", Y, "hip_line", X),
    RigJoint("Spine", "LowerBack", "spine", "thorax", Y, "shoulder_line", X),
    RigJoint("Neck", "Spine", "thorax", "neck_nose", Y, "shoulder_line", X),
    RigJoint("Head", "Neck", "neck_nose", "head", Y, "shoulder_line", X),
    RigJoint("LeftShoulder", "Spine", "thorax", "l_shoulder", X, "chest_up", Y),
    RigJoint("LeftArm", "LeftShoulder", "l_shoulder", "l_elbow", X, "l_elbow_axis", Y),
    RigJoint("LeftForeArm", "LeftArm", "l_elbow", "l_wrist", X, "l_elbow_axis", Y),
    RigJoint("LeftHand", "LeftForeArm", "l_wrist", None, X, "", Y),
    RigJoint("RightShoulder", "Spine", "thorax", "r_shoulder", -X, "chest_up", Y),
    RigJoint("RightArm", "RightShoulder", "r_shoulder", "r_elbow", -X, "r_elbow_axis", Y),
    RigJoint("RightForeArm", "RightArm", "r_elbow", "r_wrist", -X, "r_elbow_axis", Y),
    RigJoint("RightHand", "RightForeArm", "r_wrist", None, -X, "", Y),
)
RIG_INDEX = {joint.name: i for i, joint in enumerate(RIG)}
# Bones whose lengths are averaged over the two sides: (left, right) rig joints.
SIDE_PAIRS = tuple((j.name, j.name.replace("Left", "Right").replace("LHip", "RHip")) for j in RIG if j.name[0] == "L")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)


def _secondary(kind: str, p: np.ndarray) -> np.ndarray:
    """The twist-fixing direction (T, 3) for joints (T, 17, 3)."""
    hip_line = _unit(p[:, J["l_hip"]] - p[:, J["r_hip"]])
    shoulder_line = _unit(p[:, J["l_shoulder"]] - p[:, J["r_shoulder"]])
    if kind == "up":
        return p[:, J["spine"]] - p[:, J["pelvis"]]
    if kind == "hip_line":
        return hip_line
    if kind == "shoulder_line":
        return shoulder_line
    chest_up = _unit(p[:, J["thorax"]] - p[:, J["spine"]])
    if kind == "chest_up":
        return chest_up
    side = kind[0]
    if kind.endswith("knee_axis"):  # the knee's hinge, pointing to the body's left for either leg
        hip, knee, ankle = (p[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        return np.cross(_unit(knee - hip), _unit(ankle - knee)) + STRAIGHT_BLEND * hip_line
    # The elbow's hinge, turned so that it is "up" in the T-pose for either arm.
    shoulder, elbow, wrist = (p[:, J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
    hinge = np.cross(_unit(elbow - shoulder), _unit(wrist - elbow)) * (-1.0 if side == "l" else 1.0)
    back_up = _unit(chest_up - np.cross(shoulder_line, chest_up))  # up and backwards: where an arm rarely points
    return hinge + STRAIGHT_BLEND * back_up


def frame_rotation(
    primary: np.ndarray, secondary: np.ndarray, rest_primary: np.ndarray, rest_secondary: np.ndarray
) -> np.ndarray:
    """Rotations (T, 3, 3) taking `rest_primary` to `primary` (T, 3) and `rest_secondary` into the plane of
    `primary` and `secondary`."""

    def basis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = _unit(a)
        b = _unit(b - (b * a).sum(-1, keepdims=True) * a)
        return np.stack([a, b, np.cross(a, b)], -1)

    rest = basis(rest_primary[None], rest_secondary[None])[0]
    return basis(primary, secondary) @ rest.T


def global_rotations(joints: np.ndarray) -> np.ndarray:
    """Each rig joint's world rotation (T, len(RIG), 3, 3) for world joints (T, 17, 3)."""
    out = np.zeros((len(joints), len(RIG), 3, 3))
    for i, joint in enumerate(RIG):
        if joint.parent is None:  # the pelvis: its left-right line and the lower back
            primary = joints[:, J["l_hip"]] - joints[:, J["r_hip"]]
        elif joint.toward is None:
            out[:, i] = out[:, RIG_INDEX[joint.parent]]
            continue
        else:
            primary = joints[:, J[joint.toward]] - joints[:, J[joint.at]]
        out[:, i] = frame_rotation(primary, _secondary(joint.secondary, joints), joint.rest_axis, joint.rest_secondary)
    return out


def fit_bone_lengths(joints: np.ndarray) -> dict[str, float]:
    """Each bone's median length over the frames (metres), left and right averaged, by rig joint name."""
    lengths = {
        j.name: float(np.median(np.linalg.norm(joints[:, J[j.toward]] - joints[:, J[j.at]], axis=-1)))
        for j in RIG
        if j.toward is not None
    }
    for left, right in SIDE_PAIRS:
        if left in lengths:
            lengths[left] = lengths[right] = (lengths[left] + lengths[right]) / 2
    return lengths


def rest_offsets(lengths: dict[str, float]) -> np.ndarray:
    """Each rig joint's offset from its parent in the rest pose (len(RIG), 3): the parent's bone."""
    offsets = np.zeros((len(RIG), 3))
    for i, joint in enumerate(RIG):
        parent = RIG[RIG_INDEX[joint.parent]] if joint.parent is not None else None
        if parent is not None and parent.toward is not None and parent.toward == joint.at:
            offsets[i] = parent.rest_axis * lengths[parent.name]
    return offsets


def fitted_joints(joints: np.ndarray, lengths: dict[str, float]) -> np.ndarray:
    """The joints (T, 17, 3) that the rig can show: from the pelvis, each bone along its lifted direction with
    the fitted length. Forward kinematics of the written BVH must give these."""
    out = joints.copy()
    for joint in RIG:
        if joint.toward is not None and joint.parent is not None:
            direction = _unit(joints[:, J[joint.toward]] - joints[:, J[joint.at]])
            out[:, J[joint.toward]] = out[:, J[joint.at]] + direction * lengths[joint.name]
    return out


def _end_site(joint: RigJoint, lengths: dict[str, float]) -> np.ndarray | None:
    if joint.name.endswith("Foot"):
        return FOOT_END
    if joint.name.endswith("Hand"):
        return joint.rest_axis * HAND_END
    if joint.name == "Head":
        return joint.rest_axis * lengths["Head"]
    return None


def rig_motion(joints: np.ndarray, frame_time: float, unit_scale: float) -> tuple[BvhMotion, dict[str, float]]:
    """A BVH motion of world joints (T, 17, 3) metres, y up: the rig with the track's bone lengths, the root
    at the pelvis, rotations by inverse kinematics. `unit_scale`: file units per metre (100: centimetres).
    Returns the motion and the fitted bone lengths (metres)."""
    lengths = fit_bone_lengths(joints)
    offsets = rest_offsets(lengths) * unit_scale
    world = global_rotations(joints)
    channels, columns, bvh_joints, start = [], [], [], 0
    for i, joint in enumerate(RIG):
        parent = RIG_INDEX[joint.parent] if joint.parent is not None else -1
        local = world[:, i] if parent < 0 else np.swapaxes(world[:, parent], -1, -2) @ world[:, i]
        euler = Rotation.from_matrix(local).as_euler(EULER_ORDER, degrees=True)
        names = ROOT_CHANNELS if parent < 0 else JOINT_CHANNELS
        if parent < 0:
            columns.append(joints[:, J["pelvis"]] * unit_scale)
        columns.append(euler)
        end = _end_site(joint, lengths)
        bvh_joints.append(
            BvhJoint(joint.name, parent, offsets[i], list(names), start, None if end is None else end * unit_scale)
        )
        start += len(names)
        channels.extend(names)
    return BvhMotion(bvh_joints, frame_time, np.concatenate(columns, 1)), lengths
