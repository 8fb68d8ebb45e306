"""Every joint table: joint orders, bones, left/right pairs, occlusion groups, name mappings. Defined here once."""

from __future__ import annotations

COCO17_JOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_COCO_JOINTS = len(COCO17_JOINTS)

# Pairs of joint indices drawn as limbs in overlays.
COCO17_BONES: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)

# Index of each joint's mirror image (used by left-right flips).
COCO17_FLIP: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

# Human3.6M 17-joint order (VideoPose3D's), the lifter's output. Camera coordinates, OpenCV convention
# (x right, y down, z forward), metres, relative to the pelvis.
H36M17_JOINTS: tuple[str, ...] = (
    "pelvis",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
)
NUM_H36M_JOINTS = len(H36M17_JOINTS)
H36M17_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M17_FLIP: tuple[int, ...] = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
H36M17_BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(H36M17_PARENTS) if p >= 0)

# The body points that mocap is turned into: the 17 H36M joints plus the four face points COCO needs.
FACE_POINTS: tuple[str, ...] = ("l_eye", "r_eye", "l_ear", "r_ear")
BODY_POINTS: tuple[str, ...] = H36M17_JOINTS + FACE_POINTS
BODY_INDEX = {name: i for i, name in enumerate(BODY_POINTS)}

# Each COCO-17 keypoint as a body point.
COCO_FROM_BODY: tuple[int, ...] = tuple(
    BODY_INDEX[name]
    for name in (
        "neck_nose",
        "l_eye",
        "r_eye",
        "l_ear",
        "r_ear",
        "l_shoulder",
        "r_shoulder",
        "l_elbow",
        "r_elbow",
        "l_wrist",
        "r_wrist",
        "l_hip",
        "r_hip",
        "l_knee",
        "r_knee",
        "l_ankle",
        "r_ankle",
    )
)

# Left/right limb pairs of the H36M skeleton, as (parent, child) joint indices: thigh, shin, upper arm, forearm.
LIMB_PAIRS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((4, 5), (1, 2)),
    ((5, 6), (2, 3)),
    ((11, 12), (14, 15)),
    ((12, 13), (15, 16)),
)

# A body's height, independent of its pose: ankle to head joint along the bones (leg bones of both sides averaged).
HEIGHT_LEG_BONES: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (4, 5), (5, 6))
HEIGHT_TRUNK_BONES: tuple[tuple[int, int], ...] = ((0, 7), (7, 8), (8, 9), (9, 10))
# That height over a person's standing height (stature): Bandai actors 0.96, the CC rigs 0.985.
BODY_HEIGHT_PER_STATURE = 0.97
# The 12 limb joints (hips, knees, ankles, shoulders, elbows, wrists) that cross-rig errors are measured on: the
# spine, neck and head joints sit in different places on different rigs.
LIMB_JOINTS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)
HIP_JOINTS: tuple[int, int] = (1, 4)

# COCO-17 limb pairs that detectors swap: (left, right) elbows, wrists, knees, ankles, hips, shoulders.
COCO17_SWAP_PAIRS: tuple[tuple[int, int], ...] = ((7, 8), (9, 10), (13, 14), (15, 16), (11, 12), (5, 6))
# COCO-17 joint groups that disappear together behind an object or another limb.
COCO17_OCCLUSION_GROUPS: tuple[tuple[int, ...], ...] = (
    (5, 7, 9),
    (6, 8, 10),
    (11, 13, 15),
    (12, 14, 16),
    (7, 9),
    (8, 10),
    (13, 15),
    (14, 16),
    (0, 1, 2, 3, 4),
)

# VideoPose3D's data_3d_h36m.npz holds 32 joints per frame; these 17 are the standard H36M-17.
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
NUM_H36M32_JOINTS = 32

NUM_BODY_POINTS = len(BODY_POINTS)
# Parent of each body point, for bone-length scaling; face points hang rigidly off the thorax.
_BODY_PARENT = {
    "pelvis": None,
    "r_hip": "pelvis",
    "r_knee": "r_hip",
    "r_ankle": "r_knee",
    "l_hip": "pelvis",
    "l_knee": "l_hip",
    "l_ankle": "l_knee",
    "spine": "pelvis",
    "thorax": "spine",
    "neck_nose": "thorax",
    "head": "thorax",
    "l_shoulder": "thorax",
    "l_elbow": "l_shoulder",
    "l_wrist": "l_elbow",
    "r_shoulder": "thorax",
    "r_elbow": "r_shoulder",
    "r_wrist": "r_elbow",
    "l_eye": "thorax",
    "r_eye": "thorax",
    "l_ear": "thorax",
    "r_ear": "thorax",
}
BODY_PARENTS: tuple[int, ...] = tuple(
    -1 if _BODY_PARENT[n] is None else BODY_INDEX[_BODY_PARENT[n]] for n in BODY_POINTS
)
# Which proportion each bone (named by its child point) belongs to, for body-shape augmentation.
BONE_GROUPS: tuple[str, ...] = ("hip_width", "thigh", "shin", "torso", "head", "shoulder_width", "upper_arm", "forearm")
BONE_GROUP_OF: dict[str, str] = {
    "r_hip": "hip_width",
    "l_hip": "hip_width",
    "r_knee": "thigh",
    "l_knee": "thigh",
    "r_ankle": "shin",
    "l_ankle": "shin",
    "spine": "torso",
    "thorax": "torso",
    "neck_nose": "head",
    "head": "head",
    "l_eye": "head",
    "r_eye": "head",
    "l_ear": "head",
    "r_ear": "head",
    "l_shoulder": "shoulder_width",
    "r_shoulder": "shoulder_width",
    "l_elbow": "upper_arm",
    "r_elbow": "upper_arm",
    "l_wrist": "forearm",
    "r_wrist": "forearm",
}
# Index of each body point's mirror image.
BODY_FLIP: tuple[int, ...] = tuple(
    BODY_INDEX[n.replace("l_", "#").replace("r_", "l_").replace("#", "r_")] if n[:2] in ("l_", "r_") else i
    for i, n in enumerate(BODY_POINTS)
)

# Body point -> candidate BVH joint names, first match wins: Bandai-Namco, CMU, Mixamo, Unity humanoid, Unreal
# mannequin, 3ds Max Biped, SMPL, Reallusion Character Creator `CC_Base_*`. Names match exactly, then ignoring case,
# then by io.mocap.joint_key (no namespace or prefix that every joint shares, no case, no separators), so
# "mixamorig:LeftUpLeg", "Bip01 L Thigh", "thigh_l" and "left_hip" need no entries of their own.
# A TOML [joints] table overrides any of them. `spine` may be missing: io.mocap places it along the spine.
BVH_JOINT_NAMES: dict[str, list[str]] = {
    "pelvis": ["Hips", "Hip", "Pelvis", "Root", "CC_Base_Hip"],
    "l_hip": [
        "UpperLeg_L",
        "LeftUpLeg",
        "LeftUpperLeg",
        "LeftHip",
        "LeftThigh",
        "lThigh",
        "Thigh_L",
        "L_Hip",
        "CC_Base_L_Thigh",
    ],
    "l_knee": [
        "LowerLeg_L",
        "LeftLeg",
        "LeftLowerLeg",
        "LeftKnee",
        "LeftShin",
        "lShin",
        "L_Knee",
        "Calf_L",
        "L_Calf",
        "CC_Base_L_Calf",
    ],
    "l_ankle": ["Foot_L", "LeftFoot", "LeftAnkle", "lFoot", "L_Ankle", "CC_Base_L_Foot"],
    "r_hip": [
        "UpperLeg_R",
        "RightUpLeg",
        "RightUpperLeg",
        "RightHip",
        "RightThigh",
        "rThigh",
        "Thigh_R",
        "R_Hip",
        "CC_Base_R_Thigh",
    ],
    "r_knee": [
        "LowerLeg_R",
        "RightLeg",
        "RightLowerLeg",
        "RightKnee",
        "RightShin",
        "rShin",
        "R_Knee",
        "Calf_R",
        "R_Calf",
        "CC_Base_R_Calf",
    ],
    "r_ankle": ["Foot_R", "RightFoot", "RightAnkle", "rFoot", "R_Ankle", "CC_Base_R_Foot"],
    "spine": ["Chest", "Spine1", "Spine", "abdomen", "Spine_01", "CC_Base_Spine01"],
    "thorax": ["Neck", "Neck1", "Neck_01", "CC_Base_NeckTwist01"],
    "head": ["Head", "CC_Base_Head"],
    "l_shoulder": [
        "UpperArm_L",
        "LeftArm",
        "LeftUpperArm",
        "lShldr",
        "L_UpperArm",
        "LeftShoulder",
        "L_Shoulder",
        "CC_Base_L_Upperarm",
    ],
    "l_elbow": ["LowerArm_L", "LeftForeArm", "LeftElbow", "LeftLowerArm", "lForeArm", "L_Elbow", "CC_Base_L_Forearm"],
    "l_wrist": ["Hand_L", "LeftHand", "LeftWrist", "lHand", "L_Wrist", "CC_Base_L_Hand"],
    "r_shoulder": [
        "UpperArm_R",
        "RightArm",
        "RightUpperArm",
        "rShldr",
        "R_UpperArm",
        "RightShoulder",
        "R_Shoulder",
        "CC_Base_R_Upperarm",
    ],
    "r_elbow": [
        "LowerArm_R",
        "RightForeArm",
        "RightElbow",
        "RightLowerArm",
        "rForeArm",
        "R_Elbow",
        "CC_Base_R_Forearm",
    ],
    "r_wrist": ["Hand_R", "RightHand", "RightWrist", "rHand", "R_Wrist", "CC_Base_R_Hand"],
}
# Body points a skeleton may lack (io.mocap derives them).
OPTIONAL_BVH_POINTS = ("spine",)

# Where the `spine` point sits: this fraction of the way along the skeleton's spine, by bone length, from the pelvis
# joint to the thorax (base of the neck) joint. Rigs split the spine into different joints (Bandai: Spine, Chest;
# Character Creator: Waist, Spine01, Spine02; CMU: LowerBack, Spine, Spine1), so a named joint would be a different
# point on each; 0.6 is where the Bandai rig's Chest joint sits, which the shipped lifters learned.
SPINE_CHAIN_FRACTION = 0.6

# Points placed in the head's frame, metres: (forward, up, left) from the head joint (base of the skull).
HEAD_FRAME_OFFSETS: dict[str, tuple[float, float, float]] = {
    "neck_nose": (0.11, 0.07, 0.0),
    "head": (0.03, 0.17, 0.0),
    "l_eye": (0.085, 0.10, 0.032),
    "r_eye": (0.085, 0.10, -0.032),
    "l_ear": (-0.005, 0.08, 0.075),
    "r_ear": (-0.005, 0.08, -0.075),
}
