"""Evaluate lifters on held-out 3D bodies (a mocap split, or Human3.6M via io.h36m), filmed by virtual cameras
with a fixed seed: single poses with exact or noisy 2D (`evaluate_on_bodies`), or whole clips filmed as video
tracks and lifted as the lift stage lifts them, single-frame against temporal (`evaluate_tracks`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli.config import (
    LifterNoiseSection,
    LiftSection,
    MocapSection,
    RefineNoiseSection,
    RefineSection,
    Split,
    SynthSection,
)
from camerapose_cli.core.device import compute_in, module_device
from camerapose_cli.core.geometry import project_to_image
from camerapose_cli.core.keypoints import KeypointPlacement, detector_keypoints
from camerapose_cli.core.metrics import limb_mpjpe, limb_pa_mpjpe, mpjpe, pa_mpjpe, per_joint_error, second_difference
from camerapose_cli.core.skeleton import H36M17_JOINTS, NUM_COCO_JOINTS, NUM_H36M_JOINTS
from camerapose_cli.errors import InputError
from camerapose_cli.io.mocap import load_mocap
from camerapose_cli.io.schema import KeypointTable
from camerapose_cli.models.lifter import Lifter, mirror_average
from camerapose_cli.models.refiner import Refiner
from camerapose_cli.models.temporal import TemporalLifter
from camerapose_cli.stages.lift import lift_tracks
from camerapose_cli.stages.refine import refine_table
from camerapose_cli.training.data import film_still, make_batch, to_device, window_camera
from camerapose_cli.training.loop import evaluate_lifter
from camerapose_cli.training.noise import (
    DetectorFrameNoise,
    FrameCut,
    NoiseCalibration,
    corrupt_sequences,
    cut_by_frame_edge,
)
from camerapose_cli.training.splits import clip_content, split_clips

EVAL_BATCH = 8192  # poses per forward pass


@torch.no_grad()
def evaluate_on_bodies(
    model: Lifter,
    bodies: np.ndarray,
    synth_cfg: SynthSection,
    noise_cfg: LifterNoiseSection,
    *,
    noise_frac: float,
    seed: int,
    mirror: bool = False,
    precision: torch.dtype = torch.float32,
    placement: KeypointPlacement | None = None,
    detector_noise: DetectorFrameNoise | None = None,
    frame_cut: FrameCut | None = None,
) -> dict[str, Any]:
    """Film bodies (N, 21, 3) with seeded virtual cameras and report the MPJPE family (mm) and per-joint errors.
    `noise_frac` > 0: Gaussian 2D noise of that sigma (fraction of the person's extent), no dropped joints.
    `detector_noise`: single frames of the detector noise model instead (noise.corrupt_frames).
    `mirror`: the lifter's output averaged with its mirrored input's, as `lift` does with [lift] mirror_average.
    `precision`: what the lifter computes in, as `lift` does with [lift] precision (core.device.compute_in).
    `placement`: where the 2D keypoints sit on every body (core.keypoints); None: at the joints.
    `frame_cut`: people cut by an image edge (FrameCut.everyone); None: whole."""
    noise: LifterNoiseSection | DetectorFrameNoise | None = detector_noise
    if noise_frac > 0:
        noise = noise_cfg.with_values(noise_frac=(noise_frac, noise_frac), drop_prob=(0.0, 0.0))
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    joint_sum = torch.zeros(NUM_H36M_JOINTS)
    count = 0
    points = torch.from_numpy(bodies)
    device = module_device(model)
    model.eval()
    for start in range(0, len(points), EVAL_BATCH):
        # Drawn on the CPU, where the seeded generator is, so every device films the same views.
        chunk_points = points[start : start + EVAL_BATCH]
        chunk = to_device(
            make_batch(chunk_points, synth_cfg, gen, noise, augment=False, placement=placement, frame_cut=frame_cut),
            device,
        )
        with compute_in(precision, device):
            out = mirror_average(model, chunk.inputs) if mirror else model(chunk.inputs)
        out = out.float()
        n = len(chunk.inputs)
        for key, value in evaluate_lifter(model, chunk, out).items():
            sums[key] = sums.get(key, 0.0) + value * n
        joint_sum += per_joint_error(out.pose * 1000, chunk.body[:, :NUM_H36M_JOINTS] * 1000).sum(0).cpu()
        count += n
    result: dict[str, Any] = {k: v / count for k, v in sums.items()}
    result["per_joint_mm"] = dict(zip(H36M17_JOINTS, (joint_sum / count).tolist()))
    result["poses"] = count
    return result


def motion_group(name: str, description: str, folder: str = "") -> str:
    """The motion a clip shows: a CMU description's head ("dance - attitude" -> "dance", "jump, hop" -> "jump"),
    else the Bandai content of its name (training.splits.clip_content), else its folder in the source
    (io.mocap.MocapSet.folders), else its name."""
    if description:
        return description.lower().split(" - ")[0].split(",")[0].strip() or name
    content = clip_content(name)
    return content if content != name else folder or name


def mocap_eval_bodies(
    mocap_path: Path,
    split: Split,
    mocap_cfg: MocapSection,
    stride: int,
    joint_names: dict[str, str | list[str]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every `stride`-th frame of the clips in one split of a mocap source (`all`: every clip): the body points
    (N, 21, 3) and each one's motion group (N,)."""
    mocap = load_mocap(mocap_path, joint_names, unit=mocap_cfg.unit)
    clips = mocap.names if split == "all" else split_clips(mocap.names, mocap_cfg)[split]
    frames = mocap.frames_of(clips)[::stride]
    if len(frames) == 0:
        raise InputError(f"{mocap_path}: the {split} split is empty")
    clip_groups = np.array(
        [motion_group(*clip) for clip in zip(mocap.names, mocap.descriptions, mocap.folders)], dtype=object
    )
    return mocap.points[frames], clip_groups[np.searchsorted(mocap.starts, frames, side="right") - 1]


def mocap_test_bodies(mocap_path: Path, split: Split, mocap_cfg: MocapSection, stride: int) -> np.ndarray:
    """Every `stride`-th frame of the clips in one split of a mocap source."""
    return mocap_eval_bodies(mocap_path, split, mocap_cfg, stride)[0]


@dataclass
class EvalClip:
    """A piece of one mocap clip to film as a video track."""

    name: str
    group: str
    points: np.ndarray  # (T, 21, 3) world, metres
    fps: float


def mocap_eval_clips(
    mocap_path: Path,
    split: Split,
    mocap_cfg: MocapSection,
    max_frames: int,
    joint_names: dict[str, str | list[str]] | None = None,
    fps: float | None = None,
) -> list[EvalClip]:
    """The clips of one split (`all`: every clip) cut into pieces of at most `max_frames` frames; with `fps`, every
    k-th frame of each clip first, k the whole number that brings its frame rate nearest to `fps` (a slower camera)."""
    mocap = load_mocap(mocap_path, joint_names, unit=mocap_cfg.unit)
    clips = mocap.names if split == "all" else split_clips(mocap.names, mocap_cfg)[split]
    out = []
    for name in clips:
        i = mocap.names.index(name)
        step = 1 if fps is None else max(1, round(float(mocap.fps[i]) / fps))
        points = mocap.points[mocap.starts[i] : mocap.starts[i + 1] : step]
        group = motion_group(name, mocap.descriptions[i], mocap.folders[i])
        for start in range(0, len(points), max_frames):
            piece = points[start : start + max_frames]
            if len(piece) >= 3:
                out.append(EvalClip(name, group, piece, float(mocap.fps[i]) / step))
    if not out:
        raise InputError(f"{mocap_path}: the {split} split is empty")
    return out


def film_clip(
    clip: EvalClip,
    synth_cfg: SynthSection,
    gen: torch.Generator,
    placement: KeypointPlacement | None = None,
) -> tuple[torch.Tensor, ...]:
    """One static virtual camera for a whole clip piece: (camera points (T, 21, 3), COCO px (T, 17, 2), focal (),
    principal (2,), image size (2,)); the keypoints at `placement` (core.keypoints; None: the joints)."""
    bodies = torch.from_numpy(clip.points)[None]
    draw, _ = window_camera(bodies, synth_cfg, gen)
    cam, t = film_still(bodies, draw)[0], bodies.shape[1]
    coco = project_to_image(detector_keypoints(cam, placement), draw.focal.expand(t), draw.principal.expand(t, 2))
    return cam, coco, draw.focal[0], draw.principal[0], draw.size[0]


def clip_table(keypoints: np.ndarray, present: np.ndarray, size: torch.Tensor, fps: float) -> KeypointTable:
    """A keypoints2d table of one track: the rows of the frames where `present`."""
    frame = np.flatnonzero(present)
    n = len(frame)
    return KeypointTable(
        video=np.full(n, "synthetic", dtype=object),
        frame=frame.astype(np.int64),
        time_s=frame / fps,
        track_id=np.ones(n, np.int64),
        bbox=np.zeros((n, 4), np.float32),
        score=np.ones(n, np.float32),
        keypoints=keypoints[frame].astype(np.float32),
        width=np.full(n, int(size[0]), np.int32),
        height=np.full(n, int(size[1]), np.int32),
        metadata={"fps": str(fps)},
    )


@dataclass
class TrackNoise:
    """Detector-like corruption of filmed tracks, and the refiner that cleans it before lifting (None: raw)."""

    calibration: NoiseCalibration
    config: RefineNoiseSection
    refiner: Refiner | None
    refine_cfg: RefineSection


LOST_WHEN_CUT = 0.5  # share of a person's keypoints beyond the frame's edge at which the detector loses them


def cut_track(
    keypoints: np.ndarray, size: torch.Tensor, frame_cut: FrameCut, gen: torch.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One track's keypoints (T, J, 3: x, y, confidence) in an image of `size` (W, H) px, cut by one image edge,
    and the image cropped at that edge, so that what lies beyond it sits on the crop's border as a detector reports
    it: (keypoints in the crop's pixels, frames still detected (T,) bool, the crop (x0, y0, x1, y1) in the image's
    pixels)."""
    track = torch.from_numpy(keypoints)[None]
    xy, conf = cut_by_frame_edge(track[..., :2], track[..., 2], frame_cut, gen)
    xy, moved = xy[0].numpy(), (xy != track[..., :2])[0].numpy()  # moved: (T, J, 2) per coordinate
    crop = np.array([0.0, 0.0, float(size[0]), float(size[1])])
    for axis in (0, 1):  # the one edge: every keypoint beyond it sits on one column (a side) or row
        if moved[..., axis].any():
            line = xy[..., axis][moved[..., axis]]
            first = (line > keypoints[..., axis][moved[..., axis]]).any()  # moved right or down: a left or top edge
            crop[axis if first else axis + 2] = line.min() if first else line.max()
    cropped = np.concatenate([xy - crop[:2], conf[0, ..., None].numpy()], -1)
    return cropped, moved.any(-1).mean(-1) <= LOST_WHEN_CUT, crop


@torch.no_grad()
def evaluate_tracks(
    lifters: dict[str, tuple[Lifter, TemporalLifter | None]],
    clips: list[EvalClip],
    synth_cfg: SynthSection,
    lift_cfg: LiftSection,
    noise: TrackNoise | None,
    *,
    seed: int,
    placement: KeypointPlacement | None = None,
    frame_cut: FrameCut | None = None,
) -> dict[str, dict[str, Any]]:
    """Film every clip piece as a video track (static camera, seeded), optionally corrupt and refine its 2D, and
    lift it as the lift stage does (stages.lift.lift_tracks) with each named (single-frame, temporal or None)
    pair. Per name: MPJPE, PA-MPJPE (mm) over the 17 joints of the frames that have a detection, the same over
    the 12 limb joints (mid-hip aligned), acceleration error (mm/frame^2) over runs of three such frames, overall
    and per motion group. `placement`: the 2D keypoints where a detector marks them (core.keypoints).
    `frame_cut`: every piece cut by one image edge (FrameCut.everyone, placed on the piece's extent), its image
    cropped there (cut_track); frames with more than `LOST_WHEN_CUT` of the keypoints beyond it are gaps, as the
    detector loses such a person."""
    gen = torch.Generator().manual_seed(seed)
    sums = {name: {} for name in lifters}
    for clip in clips:
        cam, coco, focal, principal, size = film_clip(clip, synth_cfg, gen, placement)
        t = len(cam)
        if noise is None:
            keypoints = torch.cat([coco, torch.ones(t, NUM_COCO_JOINTS, 1)], -1).numpy()
            present = np.ones(t, bool)
        else:
            noisy, conf, present_t = corrupt_sequences(coco[None], noise.calibration, noise.config, gen)
            keypoints, present = torch.cat([noisy[0], conf[0, ..., None]], -1).numpy(), present_t[0].numpy()
        if frame_cut is not None:
            keypoints, in_view, crop = cut_track(keypoints, size, frame_cut, gen)
            present = present & in_view
            if not present.any():
                continue  # the whole piece out of view: no track to lift
            principal = principal - torch.from_numpy(crop[:2]).float()
            size = torch.from_numpy(np.ceil(crop[2:] - crop[:2]))
        table = clip_table(keypoints, present, size, clip.fps)
        if noise is not None and noise.refiner is not None:
            table = refine_table(table, noise.refiner, noise.refine_cfg)
        intrinsics = (np.full(len(table), float(focal), np.float32), np.repeat(principal.numpy()[None], len(table), 0))
        truth = (cam - cam[:, :1])[:, :NUM_H36M_JOINTS] * 1000
        rows = torch.from_numpy(table.frame)
        have = torch.from_numpy(present)
        triple = have[2:] & have[1:-1] & have[:-2]  # frames whose acceleration is all detections
        for name, (single, temporal) in lifters.items():
            result, _ = lift_tracks(table, single, temporal, lift_cfg, intrinsics)
            pred = torch.zeros(t, NUM_H36M_JOINTS, 3)
            pred[rows] = torch.from_numpy(result.pose) * 1000
            measures = (mpjpe, pa_mpjpe, limb_mpjpe, limb_pa_mpjpe)
            err = {f"{m.__name__}_mm": float(m(pred[rows], truth[rows])) for m in measures}
            accel_err = (second_difference(pred) - second_difference(truth)).norm(dim=-1).mean(-1)[triple]
            for key in (clip.group, "all"):
                bucket = sums[name].setdefault(key, {"frames": 0, "accel": [], **dict.fromkeys(err, 0.0)})
                bucket["frames"] += len(rows)
                for measure, value in err.items():
                    bucket[measure] += value * len(rows)
                bucket["accel"].append(accel_err)
    return {
        name: {
            key: {
                "frames": b["frames"],
                **{k: v / b["frames"] for k, v in b.items() if k.endswith("_mm")},
                "accel_mm": float(torch.cat(b["accel"]).mean()),
            }
            for key, b in groups.items()
        }
        for name, groups in sums.items()
    }
