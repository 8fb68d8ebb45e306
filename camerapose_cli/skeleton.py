"""Joint orders, names and bones: defined once, imported everywhere."""

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
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

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
BODY_POINTS: tuple[str, ...] = H36M17_JOINTS + ("l_eye", "r_eye", "l_ear", "r_ear")
BODY_INDEX = {name: i for i, name in enumerate(BODY_POINTS)}

# Each COCO-17 keypoint as a body point.
COCO_FROM_BODY: tuple[int, ...] = tuple(
    BODY_INDEX[name]
    for name in (
        "neck_nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
        "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
    )
)  # fmt: skip
