"""Writers for one exported track part: world joints (T, 17, 3) in metres, y up, with their times.

- BVH: the rig of export.rig, in centimetres (most animation tools' BVH unit);
- TRC (OpenSim): the 17 joints as markers, metres, y up;
- C3D (through the `c3d` package): the same markers in millimetres, the C3D convention;
- CSV: one row per frame, `<joint>_x`, `_y`, `_z` in metres.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal, get_args

import c3d
import numpy as np
import pandas as pd

from camerapose_cli.core.skeleton import H36M17_JOINTS
from camerapose_cli.export.rig import rig_motion
from camerapose_cli.io.bvh import format_bvh

ExportFormat = Literal["bvh", "trc", "c3d", "csv"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
BVH_UNITS_PER_M = 100.0
C3D_UNITS_PER_M = 1000.0


def write_bvh(path: Path, joints: np.ndarray, times: np.ndarray) -> dict[str, float]:
    """Write the rig's motion; returns the fitted bone lengths (metres) by rig joint."""
    with warnings.catch_warnings():  # scipy warns at gimbal lock; the angles it returns still give the rotation
        warnings.simplefilter("ignore", UserWarning)
        motion, lengths = rig_motion(joints, frame_time(times), BVH_UNITS_PER_M)
    path.write_text(format_bvh(motion))
    return lengths


def write_trc(path: Path, joints: np.ndarray, times: np.ndarray, name: str) -> None:
    rate = 1.0 / frame_time(times)
    frames, markers = len(joints), len(H36M17_JOINTS)
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.4f}\t{rate:.4f}\t{frames}\t{markers}\tm\t{rate:.4f}\t1\t{frames}",
        "Frame#\tTime\t" + "\t".join(f"{joint}\t\t" for joint in H36M17_JOINTS),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, markers + 1)),
        "",
    ]
    rows = [
        f"{i + 1}\t{t - times[0]:.6f}\t" + "\t".join(f"{v:.6f}" for v in pose.reshape(-1))
        for i, (t, pose) in enumerate(zip(times, joints))
    ]
    path.write_text("\n".join(header + rows) + "\n")


def write_c3d(path: Path, joints: np.ndarray, times: np.ndarray) -> None:
    writer = c3d.Writer(point_rate=float(1.0 / frame_time(times)), point_units="mm  ")
    writer.set_point_labels(list(H36M17_JOINTS))
    no_analog = np.zeros((0, 0), np.float32)
    points = np.zeros((len(joints), len(H36M17_JOINTS), 5), np.float32)  # x, y, z, residual, camera mask
    points[..., :3] = joints * C3D_UNITS_PER_M
    writer.add_frames([(frame, no_analog) for frame in points])
    with open(path, "wb") as handle:
        writer.write(handle)


def write_csv(path: Path, joints: np.ndarray, times: np.ndarray, frames: np.ndarray) -> None:
    columns = {"frame": frames, "time_s": times}
    for j, joint in enumerate(H36M17_JOINTS):
        for axis, letter in enumerate("xyz"):
            columns[f"{joint}_{letter}"] = joints[:, j, axis]
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.6f")


def frame_time(times: np.ndarray) -> float:
    """Seconds per frame: the median step of a part's timestamps."""
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0
