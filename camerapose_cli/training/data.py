"""Training data from mocap: augment bodies, film them with random virtual cameras, corrupt the 2D (training.noise).

- lifter pairs (`make_batch`): single poses, each with its own camera;
- refiner sequences (`make_sequences`): windows of consecutive frames, one fixed camera per window;
- temporal lifter windows (`make_track_batch`): windows at a drawn frame rate, new poses (training.augment),
  cameras that may pan and travel, the refiner's detector-like corruption at a drawn strength.

Every range comes from the preset's [synth], [pose_augment] and [train_temporal] tables (pipelines/*.toml), so
nothing is tuned in code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from camerapose_cli.config import (
    LifterNoiseSection,
    PoseAugmentSection,
    RefineNoiseSection,
    SynthSection,
    TrainTemporalSection,
)
from camerapose_cli.core.geometry import focal_from_fov, lifter_inputs, look_at, project_to_image
from camerapose_cli.core.keypoints import KeypointPlacement, detector_keypoints
from camerapose_cli.core.metrics import body_height
from camerapose_cli.core.sequence import fill_gaps
from camerapose_cli.core.skeleton import (
    BODY_FLIP,
    BODY_INDEX,
    BODY_PARENTS,
    BONE_GROUP_OF,
    BONE_GROUPS,
    COCO_FROM_BODY,
    NUM_COCO_JOINTS,
    NUM_H36M_JOINTS,
)
from camerapose_cli.training.augment import augment_poses, move_joints
from camerapose_cli.training.noise import (
    DetectorFrameNoise,
    FrameCut,
    NoiseCalibration,
    corrupt_frames,
    corrupt_keypoints,
    corrupt_sequences,
    cut_by_frame_edge,
    uniform,
)

WORLD_UP = torch.tensor([0.0, 1.0, 0.0])
Batch = TypeVar("Batch")
MIN_DEPTH_M = 0.3  # a filmed body point nearer the camera than this: that camera path is not used
MAX_VIEW_ANGLE_DEG = 60.0  # nor a path that puts a body point further than this off the camera's axis: the lifter's
# virtual camera (geometry.to_virtual_camera) must look at the person from in front, which holds within this cone


@dataclass
class SyntheticBatch:
    """One batch of lifter training pairs, in each sample's virtual camera (geometry.to_virtual_camera)."""

    inputs: torch.Tensor  # (N, 17, 3) normalized COCO x, y and confidence: what the lifter sees
    body: torch.Tensor  # (N, 21, 3) body points (H36M joints first), virtual camera frame, root-relative, metres
    root: torch.Tensor  # (N, 3) pelvis in virtual camera coordinates, metres
    focal: torch.Tensor  # (N,) px
    principal: torch.Tensor  # (N, 2) px in the virtual image (zero)
    centre: torch.Tensor  # (N, 2) px in the virtual image, the 2D normalization
    scale: torch.Tensor  # (N,) px


def to_device(batch: Batch, device: torch.device) -> Batch:
    """A copy of a batch (a dataclass of tensors, possibly nested) with every tensor on `device`: batches are
    drawn on the CPU, where the seeded generators are, and trained on wherever the model is."""
    moved = {}
    for field in fields(batch):  # type: ignore[arg-type]
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor):
            moved[field.name] = value.to(device)
        elif is_dataclass(value):
            moved[field.name] = to_device(value, device)
    return replace(batch, **moved)  # type: ignore[type-var]


def scale_bones(points: torch.Tensor, factors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rescale every bone of body points (N, 21, 3) by its group's per-sample factor (N,)."""
    bones = points - points[:, [max(p, 0) for p in BODY_PARENTS]]
    group_of = {BODY_INDEX[c]: g for c, g in BONE_GROUP_OF.items()}
    out = torch.empty_like(points)
    out[:, 0] = points[:, 0]
    for child, parent in enumerate(BODY_PARENTS):  # BODY_POINTS is in topological order
        if parent >= 0:
            out[:, child] = out[:, parent] + bones[:, child] * factors[group_of[child]][:, None]
    return out


def augment_bodies(points: torch.Tensor, cfg: SynthSection, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Random proportions (limbs and widths), joint placement (another rig's), overall size and left-right
    mirroring of world bodies (N, 21, 3).

    With `repeat` = T, consecutive runs of T bodies (the frames of one sequence) share one draw.
    """
    n = len(points) // repeat
    limb_lo, limb_hi = cfg.limb_scale
    factors = {g: uniform(n, limb_lo, limb_hi, gen) for g in BONE_GROUPS}
    factors["hip_width"] = uniform(n, *cfg.hip_width_scale, gen)
    factors["shoulder_width"] = uniform(n, *cfg.shoulder_width_scale, gen)
    points = scale_bones(points, {g: f.repeat_interleave(repeat) for g, f in factors.items()})
    # Then a whole-body size drawn in metres, not relative to the source actors: their size is one person's.
    height = body_height(points[:, :NUM_H36M_JOINTS]).reshape(n, repeat).mean(1)
    size = uniform(n, *cfg.body_height_m, gen) / height
    points = points * size.repeat_interleave(repeat)[:, None, None]
    if cfg.joint_offset_m > 0:
        points = move_joints(points, cfg.joint_offset_m, gen, repeat)
    flip = (torch.rand(n, generator=gen) < cfg.flip_prob).repeat_interleave(repeat)
    mirrored = points[:, list(BODY_FLIP)] * torch.tensor([-1.0, 1.0, 1.0])
    return torch.where(flip[:, None, None], mirrored, points)


@dataclass
class CameraDraw:
    """Random pinhole cameras, one per body, and how each was aimed (so that a moving camera can re-aim)."""

    rotation: torch.Tensor  # (N, 3, 3) world to camera
    translation: torch.Tensor  # (N, 3)
    focal: torch.Tensor  # (N,) px
    principal: torch.Tensor  # (N, 2) px
    size: torch.Tensor  # (N, 2) image width, height px
    eye: torch.Tensor  # (N, 3) camera centre, world
    target: torch.Tensor  # (N, 3) the point it looks at
    offset: torch.Tensor  # (N, 3, 3) the off-centre turn and roll after aiming: rotation = offset @ look_at


def sample_cameras(
    points: torch.Tensor, cfg: SynthSection, gen: torch.Generator, clearance: torch.Tensor | None = None
) -> CameraDraw:
    """A random pinhole camera per body: distance, height, azimuth, aim, roll, image size, focal, principal point.

    `clearance` (N,) metres is added to the distance (for sequences, how far the person travels).
    """
    n = len(points)
    pelvis = points[:, BODY_INDEX["pelvis"]]
    floor = points[..., 1].amin(1)
    azimuth = uniform(n, 0, 2 * math.pi, gen)
    distance = torch.exp(uniform(n, math.log(cfg.distance[0]), math.log(cfg.distance[1]), gen))
    if clearance is not None:  # a moving person must stay in front of the camera: keep this much farther away
        distance = distance + clearance
    height = floor + uniform(n, *cfg.camera_height, gen)
    eye = torch.stack(
        [pelvis[:, 0] + distance * torch.cos(azimuth), height, pelvis[:, 2] + distance * torch.sin(azimuth)], -1
    )
    sizes = torch.tensor(cfg.image_sizes, dtype=torch.float32)
    size = sizes[torch.randint(len(sizes), (n,), generator=gen)]
    fov_deg = uniform(n, *cfg.fov_deg, gen)  # across the longer side
    focal = focal_from_fov(size[:, 0], size[:, 1], fov_deg)
    fov = torch.deg2rad(fov_deg)
    principal = size / 2 + (torch.rand(n, 2, generator=gen) - 0.5) * 2 * cfg.principal_jitter * size
    target = pelvis + (torch.rand(n, 3, generator=gen) - 0.5) * 2 * cfg.aim_jitter_m
    # Put the person off-centre too, and tilt the camera a little.
    yaw = (torch.rand(n, generator=gen) - 0.5) * fov * cfg.off_centre
    pitch = (torch.rand(n, generator=gen) - 0.5) * fov * cfg.off_centre
    roll = torch.deg2rad((torch.rand(n, generator=gen) - 0.5) * 2 * cfg.roll_deg)
    offset = _axis_rotation(roll, 2) @ _axis_rotation(pitch, 0) @ _axis_rotation(yaw, 1)
    rotation = offset @ look_at(eye, target, WORLD_UP)
    translation = -(rotation @ eye[..., None])[..., 0]
    return CameraDraw(rotation, translation, focal, principal, size, eye, target, offset)


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    out = torch.zeros(len(angle), 3, 3)
    i, j = [a for a in range(3) if a != axis]
    out[:, axis, axis] = 1
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


def draw_keypoint_placement(n: int, cfg: SynthSection, gen: torch.Generator, repeat: int = 1) -> KeypointPlacement:
    """Where a detector would put the keypoints of `n` bodies (runs of `repeat` frames share one draw)."""
    ranges = (cfg.keypoint_hip_along_thigh, cfg.keypoint_knee_along_shin, cfg.keypoint_shoulder_up_m)
    hip, knee, shoulder = (uniform(n // repeat, lo, hi, gen).repeat_interleave(repeat) for lo, hi in ranges)
    return KeypointPlacement(hip, knee, shoulder)


def film_bodies(
    bodies: torch.Tensor, cfg: SynthSection, gen: torch.Generator, placement: KeypointPlacement | None = None
):
    """Film world bodies (N, 21, 3) with random cameras; the 2D keypoints placed by `placement` (None: the
    skeleton's joints).

    Returns (camera-frame points (N, 21, 3), COCO keypoints (N, 17, 2) px, focal (N,), principal point (N, 2),
    image size (N, 2)).
    """
    draw = sample_cameras(bodies, cfg, gen)
    cam = (draw.rotation[:, None] @ bodies[..., None])[..., 0] + draw.translation[:, None]
    coco = project_to_image(detector_keypoints(cam, placement), draw.focal, draw.principal)
    return cam, coco, draw.focal, draw.principal, draw.size


def make_batch(
    world_points: torch.Tensor,
    cfg: SynthSection,
    gen: torch.Generator,
    noise: LifterNoiseSection | DetectorFrameNoise | None,
    *,
    augment: bool = True,
    poses: PoseAugmentSection | None = None,
    poses_share: float = 0.0,
    placement: KeypointPlacement | None = None,
    frame_cut: FrameCut | None = None,
) -> SyntheticBatch:
    """Body points in the world (N, 21, 3) → a lifter batch: optionally augmented bodies (proportions, where the
    detector's keypoints sit; with `poses`, a `poses_share` of them also in new poses; [synth] frame_cut_prob of
    them cut by the frame's edge), 2D corrupted by `noise` (the Gaussian model of a [lifter_noise] section, the
    detector model, or exact 2D with confidence 1 for None).
    Without `augment` the keypoints sit at `placement` (None: the joints) and no one is cut but by `frame_cut`,
    which replaces [synth]'s cut (evaluation: FrameCut.everyone)."""
    bodies = augment_bodies(world_points, cfg, gen) if augment else world_points
    if poses is not None and poses_share > 0:
        bodies = augment_poses(bodies, poses, poses_share, gen)
    if augment:
        placement = draw_keypoint_placement(len(bodies), cfg, gen)
    cam, coco_px, focal, principal, _ = film_bodies(bodies, cfg, gen, placement)
    if noise is None:
        noisy, conf = coco_px, torch.ones(coco_px.shape[:2])
    elif isinstance(noise, DetectorFrameNoise):
        noisy, conf = corrupt_frames(coco_px, noise, gen)
    else:
        noisy, conf = corrupt_keypoints(coco_px, noise, gen)
    if frame_cut is None and augment:
        frame_cut = FrameCut.of(cfg, cfg.frame_cut_prob)
    if frame_cut is not None:
        noisy, conf = cut_by_frame_edge(noisy, conf, frame_cut, gen)
    inputs, centre, scale, rotation = lifter_inputs(noisy, conf, focal, principal)
    virtual = cam @ rotation  # camera → virtual camera (R^T p for row vectors)
    root = virtual[:, BODY_INDEX["pelvis"]]
    return SyntheticBatch(inputs, virtual - root[:, None], root, focal, torch.zeros_like(principal), centre, scale)


@dataclass
class KeypointSequences:
    clean: torch.Tensor  # (B, T, 17, 2) px, the true projection
    noisy: torch.Tensor  # (B, T, 17, 2) px, what a detector would report
    conf: torch.Tensor  # (B, T, 17) the detector-like confidence
    present: torch.Tensor  # (B, T) bool: the frame has a detection (False = a gap in the track)
    focal: torch.Tensor  # (B,)
    principal: torch.Tensor  # (B, 2)
    cam_points: torch.Tensor  # (B, T, 21, 3) body points in camera coordinates, metres


def film_windows(
    windows: torch.Tensor, synth_cfg: SynthSection, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Body windows (B, T, 21, 3) → (camera points (B, T, 21, 3), focal (B,), principal (B, 2)), a camera per window."""
    b, t = windows.shape[:2]
    bodies = augment_bodies(windows.reshape(b * t, *windows.shape[2:]), synth_cfg, gen, repeat=t).reshape(windows.shape)
    draw, _ = window_camera(bodies, synth_cfg, gen)
    return film_still(bodies, draw), draw.focal, draw.principal


def window_camera(bodies: torch.Tensor, cfg: SynthSection, gen: torch.Generator) -> tuple[CameraDraw, torch.Tensor]:
    """A camera per window (B, T, 21, 3), drawn for its middle frame and kept far enough away that the person stays
    in front of it however far they travel. Returns (the draw, the pelvis's path from the middle frame (B, T, 3))."""
    t = bodies.shape[1]
    pelvis = bodies[:, :, BODY_INDEX["pelvis"]]
    path = pelvis - pelvis[:, t // 2 : t // 2 + 1]
    return sample_cameras(bodies[:, t // 2], cfg, gen, clearance=path[..., [0, 2]].norm(dim=-1).amax(1)), path


def film_still(bodies: torch.Tensor, draw: CameraDraw) -> torch.Tensor:
    """Windows (B, T, 21, 3) in the coordinates of their still cameras."""
    return torch.einsum("bij,btkj->btki", draw.rotation, bodies) + draw.translation[:, None, None]


def make_sequences(
    points: np.ndarray,
    starts: np.ndarray,
    length: int,
    stride: int,
    synth_cfg: SynthSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    gen: torch.Generator,
    frame_cut: FrameCut | None = None,
) -> KeypointSequences:
    """Windows of `length` frames, every `stride`-th mocap frame from each start index, filmed and corrupted, and
    with `frame_cut` some of them cut by an image edge (one per window)."""
    index = torch.as_tensor(starts)[:, None] + torch.arange(length)[None] * stride
    windows = torch.from_numpy(points)[index]
    cam, focal, principal = film_windows(windows, synth_cfg, gen)
    clean = project_to_image(
        cam[..., list(COCO_FROM_BODY), :].flatten(0, 1),
        focal.repeat_interleave(length),
        principal.repeat_interleave(length, 0),
    )
    clean = clean.reshape(len(starts), length, NUM_COCO_JOINTS, 2)
    noisy, conf, present = corrupt_sequences(clean, calibration, noise_cfg, gen)
    if frame_cut is not None:
        noisy, conf = cut_by_frame_edge(noisy, conf, frame_cut, gen)
    return KeypointSequences(clean, noisy, conf, present, focal, principal, cam)


def valid_window_starts(clip_starts: np.ndarray, clip_ends: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Every frame index from which a window of `length` frames at `stride` stays inside its clip."""
    span = (length - 1) * stride
    return np.concatenate(
        [np.arange(s, e - span) for s, e in zip(clip_starts, clip_ends) if e - s > span] or [np.zeros(0, np.int64)]
    )


@dataclass
class TrackBatch:
    """Windows of tracks for the temporal lifter: its inputs, and the truth for each window's output frames."""

    inputs: torch.Tensor  # (B, L, 17, 3) per-frame lifter inputs (geometry.lifter_inputs)
    present: torch.Tensor  # (B, L) bool: the frame has a detection
    frames: SyntheticBatch  # the B * outputs centre frames, window by window
    outputs: int


def sample_window_points(
    points: torch.Tensor,
    clip_starts: np.ndarray,
    clip_fps: np.ndarray,
    frames: np.ndarray,
    length: int,
    fps: tuple[float, float],
    rng: np.random.Generator,
) -> torch.Tensor:
    """Windows (B, length, 21, 3) of mocap at frame rates drawn from `fps`, around random `frames` (B,) of the
    concatenated clips (`clip_starts` (C+1,)), interpolated between mocap frames; a clip too short for the drawn
    rate is slowed to fit."""
    clip = np.searchsorted(clip_starts, frames, side="right") - 1
    first, last = clip_starts[clip], clip_starts[clip + 1] - 1
    step = clip_fps[clip] / rng.uniform(*fps, len(frames))
    step = np.minimum(step, (last - first) / max(length - 1, 1))
    span = step * (length - 1)
    start = first + rng.uniform(0, 1, len(frames)) * (last - first - span)
    index = torch.from_numpy(start[:, None] + step[:, None] * np.arange(length)[None])
    lo = index.floor().long().clamp(max=torch.from_numpy(last)[:, None])
    hi = (lo + 1).clamp(max=torch.from_numpy(last)[:, None])
    w = (index - lo).float().clamp(0, 1)[..., None, None]
    return points[lo] * (1 - w) + points[hi] * w


def film_moving(
    bodies: torch.Tensor, cfg: SynthSection, temporal: TrainTemporalSection, gen: torch.Generator, dt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Film windows (B, T, 21, 3) with a camera per window that may pan to follow the pelvis and travel sideways
    (`dt` (B,) seconds per frame), every window in view throughout (`keep_filmable`). Returns (camera points
    (B, T, 21, 3), focal (B,), principal point (B, 2))."""
    b, t = bodies.shape[:2]
    draw, path = window_camera(bodies, cfg, gen)
    pan = (torch.rand(b, generator=gen) < temporal.pan_prob).float()
    move = (torch.rand(b, generator=gen) < temporal.move_prob).float()
    heading = torch.rand(b, generator=gen) * 2 * math.pi
    speed = torch.rand(b, generator=gen) * temporal.camera_speed * move
    velocity = torch.stack([torch.cos(heading), torch.zeros(b), torch.sin(heading)], -1) * speed[:, None]
    time = (torch.arange(t) - t // 2)[None] * dt[:, None]  # (B, T) seconds from the middle frame
    eye = draw.eye[:, None] + velocity[:, None] * time[..., None]
    target = draw.target[:, None] + path * pan[:, None, None]
    aim = look_at(eye.reshape(-1, 3), target.reshape(-1, 3), WORLD_UP).reshape(b, t, 3, 3)
    rotation = draw.offset[:, None] @ aim
    cam = torch.einsum("btij,btkj->btki", rotation, bodies - eye[:, :, None])
    unusable = ~in_view(cam).flatten(1).all(1)  # a travelling camera that ran into the person or lost them
    cam = torch.where(unusable[:, None, None, None], film_still(bodies, draw), cam)
    return keep_filmable(cam, draw.focal, draw.principal, gen)


def keep_filmable(
    cam: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Filmed windows (B, T, 21, 3) with those that leave the view somewhere (a person who walks past even a still
    camera during a long window) replaced by copies of windows that stay in view, so that the lifter's virtual
    camera always faces the person and no target is undefined (an 81-frame run once turned NaN on one)."""
    usable = in_view(cam).flatten(1).all(1)
    if usable.all():
        return cam, focal, principal
    good = usable.nonzero().flatten()
    if len(good) == 0:
        raise ValueError("no window of the batch keeps the person in view of its camera")
    pick = good[torch.randint(len(good), (len(cam),), generator=gen)]
    index = torch.where(usable, torch.arange(len(cam)), pick)
    return cam[index], focal[index], principal[index]


def in_view(cam: torch.Tensor) -> torch.Tensor:
    """Which camera-frame points (..., 3) are at least MIN_DEPTH_M in front of the camera and within
    MAX_VIEW_ANGLE_DEG of its axis."""
    limit = math.tan(math.radians(MAX_VIEW_ANGLE_DEG))
    depth = cam[..., 2]
    return (depth >= MIN_DEPTH_M) & (cam[..., :2].norm(dim=-1) <= limit * depth)


def make_track_batch(
    points: torch.Tensor,
    clip_starts: np.ndarray,
    clip_fps: np.ndarray,
    frames: np.ndarray,
    receptive_field: int,
    synth_cfg: SynthSection,
    temporal: TrainTemporalSection,
    poses: PoseAugmentSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> TrackBatch:
    """Windows around `frames` (B,): augmented, filmed by (moving) virtual cameras, corrupted like detections by
    a per-window amount, with gaps filled as lift fills them and some windows at a track's start or end."""
    length = receptive_field + temporal.outputs - 1
    b = len(frames)
    windows = sample_window_points(points, clip_starts, clip_fps, frames, length, temporal.fps, rng)
    flat = augment_bodies(windows.flatten(0, 1), synth_cfg, gen, repeat=length)
    flat = augment_poses(flat, poses, temporal.pose_augment_prob, gen, repeat=length)
    bodies = flat.reshape(b, length, *flat.shape[1:])
    clip = np.searchsorted(clip_starts, frames, side="right") - 1
    dt = torch.from_numpy(1.0 / clip_fps[clip]).float()  # the drawn rate only changes how far each frame moves
    cam, focal, principal = film_moving(bodies, synth_cfg, temporal, gen, dt)
    focal_t, principal_t = focal.repeat_interleave(length), principal.repeat_interleave(length, 0)
    placement = draw_keypoint_placement(b * length, synth_cfg, gen, repeat=length)
    clean = project_to_image(detector_keypoints(cam.flatten(0, 1), placement), focal_t, principal_t)
    clean = clean.reshape(b, length, NUM_COCO_JOINTS, 2)
    noisy, conf, present = corrupt_sequences(clean, calibration, noise_cfg, gen)
    strength = torch.rand(b, generator=gen) * (torch.rand(b, generator=gen) < temporal.noise_prob)
    noisy = clean + (noisy - clean) * strength[:, None, None, None]
    noisy_window = strength > 0
    conf = torch.where(noisy_window[:, None, None], conf, torch.ones_like(conf))
    present = present | ~noisy_window[:, None]
    noisy = fill_gaps(noisy, present)
    conf = torch.where(present[..., None], conf, torch.zeros_like(conf))
    noisy, conf = cut_by_frame_edge(noisy, conf, FrameCut.of(synth_cfg, temporal.frame_cut_prob), gen)
    inputs, centre, scale, rotation = lifter_inputs(noisy.flatten(0, 1), conf.flatten(0, 1), focal_t, principal_t)
    inputs = inputs.reshape(b, length, NUM_COCO_JOINTS, 3)
    inputs, present = _repeat_edges(inputs, present, receptive_field, temporal.edge_prob, gen)
    # The truth of the output frames, in each frame's virtual camera.
    half = receptive_field // 2
    out = slice(half, half + temporal.outputs)
    virtual = torch.einsum("btkj,btji->btki", cam, rotation.reshape(b, length, 3, 3))[:, out].flatten(0, 1)
    root = virtual[:, BODY_INDEX["pelvis"]]
    pick = lambda x: x.reshape(b, length, *x.shape[1:])[:, out].flatten(0, 1)  # noqa: E731
    frames_batch = SyntheticBatch(
        pick(inputs.flatten(0, 1)),
        virtual - root[:, None],
        root,
        pick(focal_t),
        torch.zeros(b * temporal.outputs, 2),
        pick(centre),
        pick(scale),
    )
    return TrackBatch(inputs, present, frames_batch, temporal.outputs)


def _repeat_edges(
    inputs: torch.Tensor, present: torch.Tensor, receptive_field: int, share: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """For a `share` of windows, the first or last k frames (k < receptive field / 2, so that every output frame
    is a real one) replaced by the next real frame: what lift's padding does at a track's start or end."""
    b, length = present.shape
    k = torch.randint(1, receptive_field // 2 + 1, (b,), generator=gen)
    at_start = torch.rand(b, generator=gen) < 0.5
    chosen = torch.rand(b, generator=gen) < share
    frame = torch.arange(length)[None]
    source = torch.where(at_start[:, None], frame.clamp(min=k[:, None]), frame.clamp(max=length - 1 - k[:, None]))
    source = torch.where(chosen[:, None], source, frame.expand(b, length))
    gather = source[..., None, None].expand(-1, -1, *inputs.shape[2:])
    return inputs.gather(1, gather), present.gather(1, source)
