"""A small BVH reader: hierarchy, motion channels, and forward kinematics to world joint positions.

Rotations use scipy's `Rotation` (intrinsic Euler angles in the channel order the file declares).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from camerapose_cli.errors import InputError


@dataclass
class BvhJoint:
    name: str
    parent: int  # index into BvhMotion.joints, -1 for the root
    offset: np.ndarray  # (3,)
    channels: list[str] = field(default_factory=list)
    channel_start: int = 0
    end_site: np.ndarray | None = None


@dataclass
class BvhMotion:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray  # (T, total channels)

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions (T, J, 3) and world rotations (T, J, 3, 3) of every joint, in file units."""
        frames = len(self.motion)
        positions = np.zeros((frames, len(self.joints), 3))
        rotations = np.zeros((frames, len(self.joints), 3, 3))
        for index, joint in enumerate(self.joints):
            values = self.motion[:, joint.channel_start : joint.channel_start + len(joint.channels)]
            local_t = np.broadcast_to(joint.offset, (frames, 3)).copy()
            rot_axes, rot_cols = [], []
            for col, channel in enumerate(joint.channels):
                axis = channel[0].upper()
                if channel[1:].lower() == "position":
                    local_t[:, "XYZ".index(axis)] = values[:, col]
                else:
                    rot_axes.append(axis)
                    rot_cols.append(col)
            if rot_axes:
                local_r = Rotation.from_euler("".join(rot_axes), values[:, rot_cols], degrees=True).as_matrix()
            else:
                local_r = np.broadcast_to(np.eye(3), (frames, 3, 3))
            if joint.parent < 0:
                positions[:, index] = local_t
                rotations[:, index] = local_r
            else:
                parent_r = rotations[:, joint.parent]
                positions[:, index] = positions[:, joint.parent] + np.einsum("tij,tj->ti", parent_r, local_t)
                rotations[:, index] = parent_r @ local_r
        return positions, rotations


def parse_bvh(text: str, source: str = "<bvh>") -> BvhMotion:
    """Parse BVH text. Raises InputError with the file name on malformed input."""
    tokens = text.split()
    joints: list[BvhJoint] = []
    stack: list[int] = []
    channel_count = 0
    i = 0
    try:
        if tokens[0] != "HIERARCHY":
            raise InputError(f"{source}: not a BVH file (no HIERARCHY)")
        i = 1
        while tokens[i] != "MOTION":
            token = tokens[i]
            if token in ("ROOT", "JOINT"):
                name_end = tokens.index("{", i + 1)  # names may hold spaces ("Bip01 L Thigh")
                name = " ".join(tokens[i + 1 : name_end])
                joints.append(BvhJoint(name, stack[-1] if stack else -1, np.zeros(3)))
                i = name_end
            elif token == "End":
                i += 2  # "End Site"
                assert tokens[i] == "{" and tokens[i + 1] == "OFFSET"
                joints[stack[-1]].end_site = np.array(tokens[i + 2 : i + 5], float)
                i += 6  # { OFFSET x y z }
            elif token == "{":
                stack.append(len(joints) - 1)
                i += 1
            elif token == "}":
                stack.pop()
                i += 1
            elif token == "OFFSET":
                joints[stack[-1]].offset = np.array(tokens[i + 1 : i + 4], float)
                i += 4
            elif token == "CHANNELS":
                count = int(tokens[i + 1])
                joint = joints[stack[-1]]
                joint.channels = tokens[i + 2 : i + 2 + count]
                joint.channel_start = channel_count
                channel_count += count
                i += 2 + count
            else:
                raise InputError(f"{source}: unexpected token {token!r} in the hierarchy")
        frames = int(tokens[i + 2])  # MOTION Frames: N Frame Time: t
        frame_time = float(tokens[i + 5])
        values = np.array(tokens[i + 6 : i + 6 + frames * channel_count], dtype=np.float64)
    except (IndexError, ValueError, AssertionError):
        raise InputError(f"{source}: malformed BVH near token {i}") from None
    if values.size != frames * channel_count:
        raise InputError(f"{source}: truncated motion ({values.size} of {frames * channel_count} values)")
    return BvhMotion(joints, frame_time, values.reshape(frames, channel_count))


def format_bvh(motion: BvhMotion, decimals: int = 5) -> str:
    """BVH text for a motion whose joints are listed parents first (as parse_bvh returns them)."""
    children: dict[int, list[int]] = {}
    for index, joint in enumerate(motion.joints):
        children.setdefault(joint.parent, []).append(index)
    lines = ["HIERARCHY"]

    def number(value: float) -> str:
        return f"{round(float(value), decimals) + 0.0:.{decimals}f}"  # + 0.0: no "-0.00000"

    def write(index: int, depth: int) -> None:
        joint, pad = motion.joints[index], "  " * depth
        lines.append(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {' '.join(number(v) for v in joint.offset)}")
        lines.append(f"{pad}  CHANNELS {len(joint.channels)} {' '.join(joint.channels)}")
        for child in children.get(index, []):
            write(child, depth + 1)
        if joint.end_site is not None:
            lines.append(f"{pad}  End Site")
            lines.append(pad + "  {")
            lines.append(f"{pad}    OFFSET {' '.join(number(v) for v in joint.end_site)}")
            lines.append(pad + "  }")
        lines.append(pad + "}")

    for root in children.get(-1, []):
        write(root, 0)
    lines += ["MOTION", f"Frames: {len(motion.motion)}", f"Frame Time: {motion.frame_time:.8f}"]
    lines += [" ".join(number(v) for v in row) for row in motion.motion]
    return "\n".join(lines) + "\n"
