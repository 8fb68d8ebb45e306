"""The 2D detector's noise model: its error statistics, measured against real annotations, and the corruption
of clean 2D that training draws from it (single frames for the lifter, sequences for the refiner).

`calibrate_detector` runs the pose detector on annotated images (COCO JSON) and measures, per joint, the
error relative to the person's size, how confidence relates to error, how often joints are missed and how
often left and right are swapped. `weights/noise_calibration.json` holds the result for YOLO11n-pose;
`weights/calibrate_noise.py` reproduces it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.signal import lfilter

from camerapose_cli.core.skeleton import COCO17_FLIP, COCO17_JOINTS, COCO17_OCCLUSION_GROUPS, COCO17_SWAP_PAIRS
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.io.resources import shipped_dir
from camerapose_cli.io.video import iter_frame_batches, probe

if TYPE_CHECKING:  # types only: config and the detector sit above this module's users
    from camerapose_cli.config import FrameEdge, LifterNoiseSection, RefineNoiseSection, SynthSection
    from camerapose_cli.detect.pose2d import PoseDetector

CONF_BINS = (0.0, 0.3, 0.5, 0.7, 0.85, 1.01)


@dataclass
class NoiseCalibration:
    """Detector error statistics. Errors are fractions of the person's size (sqrt of the box area)."""

    people: int
    joints: int
    joint_error_median: list[float]  # (17,) median relative error of each joint, detected (conf >= 0.3)
    conf_bins: list[float]
    error_by_conf: list[float]  # median relative error of joints in each confidence bin (nan if empty)
    share_by_conf: list[float]  # fraction of labelled joints in each confidence bin
    miss_rate: float  # labelled joints the detector gives confidence < 0.3
    swap_rate: float  # left/right pairs closer to the swapped labels than to the right ones
    person_recall: float  # annotated people matched by a detection

    def save(self, path: Path) -> None:
        """Strict JSON: an empty statistic (nan) is written as null."""
        clean = {
            k: [None if isinstance(x, float) and np.isnan(x) else x for x in v] if isinstance(v, list) else v
            for k, v in asdict(self).items()
        }
        path.write_text(json.dumps(clean, indent=1, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> NoiseCalibration:
        data = json.loads(Path(path).read_text())
        return cls(
            **{k: [float("nan") if x is None else x for x in v] if isinstance(v, list) else v for k, v in data.items()}
        )


def load_calibration(cfg: RefineNoiseSection) -> NoiseCalibration:
    """The detector statistics that the noise model's section names (a file in weights/)."""
    return NoiseCalibration.load(shipped_dir("weights") / cfg.calibration)


def match_people(gt_boxes: np.ndarray, det_boxes: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Optimal one-to-one matching of annotated and detected people by box IoU (scipy's Hungarian solver)."""
    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return []
    from torchvision.ops import box_iou  # here, not at the top: importing torchvision costs every command ~150 MB

    iou = box_iou(
        torch.as_tensor(gt_boxes, dtype=torch.float64), torch.as_tensor(det_boxes, dtype=torch.float64)
    ).numpy()
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


def error_statistics(pairs: list[tuple[np.ndarray, np.ndarray, float]], annotated: int) -> NoiseCalibration:
    """Statistics from matched (ground truth (17,3), detection (17,3), person size px) pairs."""
    flip = list(COCO17_FLIP)
    rel_err, conf, joint_idx, swaps, pair_count = [], [], [], 0, 0
    for gt, det, size in pairs:
        labelled = gt[:, 2] > 0
        err = np.linalg.norm(det[:, :2] - gt[:, :2], axis=-1) / size
        swapped_err = np.linalg.norm(det[:, :2] - gt[flip, :2], axis=-1) / size
        for j in np.flatnonzero(labelled):
            rel_err.append(err[j])
            conf.append(det[j, 2])
            joint_idx.append(j)
        for j in range(len(COCO17_JOINTS)):
            if flip[j] > j and labelled[j] and labelled[flip[j]] and det[j, 2] >= 0.3:
                pair_count += 1
                swaps += int(swapped_err[j] + swapped_err[flip[j]] < err[j] + err[flip[j]])
    rel_err, conf, joint_idx = np.asarray(rel_err), np.asarray(conf), np.asarray(joint_idx)
    detected = conf >= 0.3
    per_joint = [
        float(np.median(rel_err[(joint_idx == j) & detected])) if np.any((joint_idx == j) & detected) else float("nan")
        for j in range(len(COCO17_JOINTS))
    ]
    bins = np.digitize(conf, CONF_BINS) - 1
    by_conf = [
        float(np.median(rel_err[bins == b])) if np.any(bins == b) else float("nan") for b in range(len(CONF_BINS) - 1)
    ]
    share = [float(np.mean(bins == b)) for b in range(len(CONF_BINS) - 1)]
    return NoiseCalibration(
        people=len(pairs),
        joints=int(len(rel_err)),
        joint_error_median=per_joint,
        conf_bins=list(CONF_BINS),
        error_by_conf=by_conf,
        share_by_conf=share,
        miss_rate=float(np.mean(~detected)) if len(conf) else 0.0,
        swap_rate=swaps / max(pair_count, 1),
        person_recall=len(pairs) / max(annotated, 1),
    )


def calibrate_detector(coco_json: Path, detector: PoseDetector) -> NoiseCalibration:
    """Run `detector` on every image of a COCO keypoint file and measure its errors."""
    data = json.loads(Path(coco_json).read_text())
    people = read_coco_keypoints(coco_json, min_keypoints=1)
    boxes = {a["id"]: a["bbox"] for a in data["annotations"]}
    pairs = []
    for image in sorted(set(people.image)):
        rows = [i for i, p in enumerate(people.image) if p == image]
        gt_boxes = np.array(
            [[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in (boxes[people.annotation_id[i]] for i in rows)]
        )
        info = probe(image)
        geometry = detector.geometry(info.width, info.height)
        batch = next(iter_frame_batches(info, 1, geometry.resized))
        dets = detector.detect(batch.frames, geometry)[0]
        for g, d in match_people(gt_boxes, dets.boxes):
            size = float(np.sqrt(np.prod(gt_boxes[g, 2:] - gt_boxes[g, :2])))
            pairs.append((people.keypoints[rows[g]], dets.keypoints[d], size))
    return error_statistics(pairs, len(people.keypoints))


def uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """n draws from U(low, high)."""
    return low + (high - low) * torch.rand(n, generator=gen)


@dataclass(frozen=True)
class FrameCut:
    """People whom an image edge cuts: a `prob` share of the poses or windows, a `side_share` of those by the left
    or the right edge (either at random), a `top_share` by the top edge, the rest by the bottom one. The edge keeps
    `keep` (drawn per pose or window) of the person's 2D extent across it in view; the keypoints beyond it sit on it
    with confidences under `conf_max` (bottom and top) or `side_conf_max`. That is what YOLO11n-pose reports for a
    person the frame cuts, measured on the courtyard clip cropped: below the bottom edge the ankles sit on the border
    at confidence 0.10-0.16 median; beyond a side edge the joints sit on it (never beyond), at 0.04-0.45 median, up
    to 0.8; above the top edge the face sits on it at 0.00-0.06 median."""

    prob: float
    keep: tuple[float, float]
    conf_max: float
    side_share: float = 0.0
    side_conf_max: float = 0.0
    top_share: float = 0.0

    @classmethod
    def of(cls, cfg: SynthSection, prob: float) -> FrameCut:
        """[synth]'s cut, on a `prob` share of the poses or windows."""
        keep, side_share, top_share = cfg.frame_cut_keep, cfg.frame_cut_side_share, cfg.frame_cut_top_share
        return cls(prob, keep, cfg.frame_cut_conf_max, side_share, cfg.frame_cut_side_conf_max, top_share)

    def everyone(self, keep: float, edge: FrameEdge) -> FrameCut:
        """Every person cut by `edge`, `keep` of them in view (evaluation)."""
        side, top = float(edge == "side"), float(edge == "top")
        return FrameCut(1.0, (keep, keep), self.conf_max, side, self.side_conf_max, top)


def cut_by_frame_edge(
    keypoints: torch.Tensor, conf: torch.Tensor, cut: FrameCut, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`cut` applied to 2D poses (N, J, 2) px or windows (N, T, J, 2): one edge per pose or window, placed on its
    extent over all of the window's frames. Returns (keypoints, confidences); with `cut.prob` 0 the inputs, and
    nothing drawn from `gen`."""
    if cut.prob == 0:
        return keypoints, conf
    n = len(keypoints)
    per_item = (n,) + (1,) * (keypoints.dim() - 2)
    chosen = torch.rand(n, generator=gen) < cut.prob
    keep = uniform(n, *cut.keep, gen).reshape(per_item)
    unit_conf = torch.rand(conf.shape, generator=gen)
    side = torch.zeros(per_item, dtype=torch.bool)
    sign = torch.ones(per_item)
    if cut.side_share > 0:  # drawn only then, so that bottom-only cuts keep their random stream
        side = (torch.rand(n, generator=gen) < cut.side_share).reshape(per_item)
        left = (torch.rand(n, generator=gen) < 0.5).reshape(per_item)
        sign = torch.where(side & left, -1.0, 1.0)
    if cut.top_share > 0:  # drawn only then too, so that cuts without a top edge keep their random stream
        top_of_rest = cut.top_share / max(1.0 - cut.side_share, cut.top_share)
        top = ~side & (torch.rand(n, generator=gen) < top_of_rest).reshape(per_item)
        sign = torch.where(top, -1.0, sign)
    # Along the axis the edge crosses, signed so that the cut part lies beyond it (a left or top edge: negated).
    along = torch.where(side, keypoints[..., 0], keypoints[..., 1]) * sign
    near = along.reshape(n, -1).amin(1).reshape(per_item)
    far = along.reshape(n, -1).amax(1).reshape(per_item)
    edge = (near + keep * (far - near)).expand_as(along)
    beyond = chosen.reshape(per_item) & (along > edge)
    conf_max = torch.where(side, cut.side_conf_max, cut.conf_max)
    conf = torch.where(beyond, torch.minimum(conf, unit_conf * conf_max), conf)
    moved = torch.where(beyond, edge, along) * sign
    x = torch.where(side, moved, keypoints[..., 0])
    y = torch.where(side, keypoints[..., 1], moved)
    return torch.stack([x, y], -1), conf


def corrupt_keypoints(
    keypoints: torch.Tensor, cfg: LifterNoiseSection, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detector-like noise on clean 2D (N, 17, 2): Gaussian jitter scaled by the person's size, dropped joints.

    Returns (noisy keypoints, confidences).
    """
    n, j, _ = keypoints.shape
    extent = (keypoints.amax(1) - keypoints.amin(1)).amax(-1)  # the person's height or width, px
    sigma = uniform(n, *cfg.noise_frac, gen) * extent
    noise = torch.randn(n, j, 2, generator=gen) * sigma[:, None, None]
    noisy = keypoints + noise
    # Confidence falls as the error grows, as the detector's does.
    err = noise.norm(dim=-1) / extent[:, None].clamp(min=1)
    conf = (1.0 - err * cfg.conf_per_error - cfg.conf_jitter * torch.rand(n, j, generator=gen)).clamp(*cfg.conf_range)
    dropped = torch.rand(n, j, generator=gen) < uniform(n, *cfg.drop_prob, gen)[:, None]
    wander = (torch.rand(n, j, 2, generator=gen) - 0.5) * extent[:, None, None] * cfg.drop_wander
    noisy = torch.where(dropped[..., None], keypoints + wander, noisy)
    conf = torch.where(dropped, torch.rand(n, j, generator=gen) * cfg.dropped_conf_max, conf)
    return noisy, conf


def _bursts(b: int, t: int, rate: torch.Tensor, max_len: int, gen: torch.Generator) -> torch.Tensor:
    """(B, T) bool: runs of 1..max_len frames starting with probability `rate` (B,) per frame."""
    starts = torch.rand(b, t, generator=gen) < rate[:, None]
    lengths = torch.randint(1, max_len + 1, (b, t), generator=gen)
    covered = torch.zeros(b, t, dtype=torch.bool)
    for offset in range(min(max_len, t)):  # a run cannot outlast a sequence shorter than max_len
        shifted = torch.zeros(b, t, dtype=torch.bool)
        shifted[:, offset:] = (starts & (lengths > offset))[:, : t - offset]
        covered |= shifted
    return covered


def drifting_noise(shape: tuple[int, ...], correlation_frames: float, gen: torch.Generator) -> torch.Tensor:
    """Unit-variance Gaussian noise (B, T, ...) that drifts along T: a stationary first-order autoregressive process
    whose correlation falls to 1/e after `correlation_frames` frames."""
    rho = math.exp(-1.0 / correlation_frames)
    gain = math.sqrt(1 - rho**2)
    steps = torch.randn(shape, generator=gen).numpy()
    start = steps[:, :1] * (1 - gain)  # filter state that makes the first frame the step itself: stationary from t = 0
    return torch.from_numpy(lfilter([gain], [1.0, -rho], steps, axis=1, zi=start)[0]).float()


def corrupt_sequences(
    clean: torch.Tensor,
    calibration: NoiseCalibration,
    cfg: RefineNoiseSection,
    gen: torch.Generator,
    strength: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detector-like corruption of clean sequences (B, T, 17, 2). Returns (noisy, conf, present).
    `strength` (B,) scales each sequence's jitter (None: 1)."""
    b, t, j, _ = clean.shape
    lo, hi = clean.amin(2), clean.amax(2)
    size = torch.sqrt(((hi - lo).prod(-1)).clamp(min=1.0)).mean(1)  # person size per window, px
    # Jitter: per-joint median error from the calibration; a Gaussian's median radius is 1.1774 sigma.
    per_joint = torch.tensor(calibration.joint_error_median, dtype=torch.float32).nan_to_num(0.05) / 1.1774
    level = torch.exp(torch.randn(b, generator=gen) * cfg.jitter_spread) * cfg.jitter_scale
    if strength is not None:
        level = level * strength
    sigma = per_joint[None, None, :] * (size * level)[:, None, None]
    white = cfg.jitter_white_share
    noise = torch.randn(b, t, j, 2, generator=gen) * white
    if white < 1:
        persistent = drifting_noise((b, t, j, 2), cfg.jitter_correlation_frames, gen)
        noise = noise + persistent * math.sqrt(1 - white**2)
    noise = noise * sigma[..., None]
    noisy = clean + noise
    rel_err = noise.norm(dim=-1) / size[:, None, None]
    conf = (cfg.conf_clean - cfg.conf_per_error * rel_err + cfg.conf_noise * torch.randn(b, t, j, generator=gen)).clamp(
        0.3, 0.99
    )
    # Left-right swaps in short bursts, with the moderately high confidence the detector keeps.
    swap_rate = torch.full((b,), max(calibration.swap_rate, cfg.swap_rate_min))
    for left, right in COCO17_SWAP_PAIRS:
        burst = _bursts(b, t, swap_rate / len(COCO17_SWAP_PAIRS), cfg.swap_max_frames, gen)
        a, c = noisy[..., left, :].clone(), noisy[..., right, :].clone()
        noisy[..., left, :] = torch.where(burst[..., None], c, a)
        noisy[..., right, :] = torch.where(burst[..., None], a, c)
        swapped_conf = 0.5 + 0.3 * torch.rand(b, t, generator=gen)
        conf[..., left] = torch.where(burst, swapped_conf, conf[..., left])
        conf[..., right] = torch.where(burst, swapped_conf, conf[..., right])
    # Occlusion bursts: a limb drifts to a wrong spot with low confidence for a while.
    occ_rate = torch.rand(b, generator=gen) * cfg.occlusion_rate
    for group in COCO17_OCCLUSION_GROUPS:
        burst = _bursts(b, t, occ_rate / len(COCO17_OCCLUSION_GROUPS), cfg.occlusion_max_frames, gen)
        drift = (
            torch.cumsum(torch.randn(b, t, 1, 2, generator=gen), 1) * size[:, None, None, None] * cfg.occlusion_drift
        )
        for joint in group:
            noisy[..., joint, :] = torch.where(
                burst[..., None], noisy[..., joint, :] + drift[..., 0, :], noisy[..., joint, :]
            )
            conf[..., joint] = torch.where(
                burst, cfg.occluded_conf_max * torch.rand(b, t, generator=gen), conf[..., joint]
            )
    # Vanishing joints: confidence near zero at a random spot in and around the person's box.
    missing = torch.rand(b, t, j, generator=gen) < max(calibration.miss_rate, cfg.miss_rate_min)
    margin = (hi - lo)[:, :, None] * cfg.spot_margin
    spot = lo[:, :, None] - margin + torch.rand(b, t, j, 2, generator=gen) * ((hi - lo)[:, :, None] + 2 * margin)
    noisy = torch.where(missing[..., None], spot, noisy)
    conf = torch.where(missing, 0.05 * torch.rand(b, t, j, generator=gen), conf)
    # Spikes: a joint jumps far for a single frame, with a low confidence.
    spike = torch.rand(b, t, j, generator=gen) < cfg.spike_rate
    angle = torch.rand(b, t, j, generator=gen) * 2 * torch.pi
    reach = (cfg.spike_size[0] + (cfg.spike_size[1] - cfg.spike_size[0]) * torch.rand(b, t, j, generator=gen)) * size[
        :, None, None
    ]
    jump = torch.stack([torch.cos(angle), torch.sin(angle)], -1) * reach[..., None]
    noisy = torch.where(spike[..., None], noisy + jump, noisy)
    conf = torch.where(spike, cfg.spike_conf_max * torch.rand(b, t, j, generator=gen), conf)
    # Gaps: frames where the track has no detection at all.
    present = ~_bursts(b, t, torch.full((b,), cfg.gap_rate), cfg.gap_max_frames, gen)
    return noisy, conf, present


@dataclass(frozen=True)
class DetectorFrameNoise:
    """Single frames of the detector noise model ([refine_noise] and its calibration), the jitter scaled by a
    strength drawn per frame from `strength`: how the single-frame lifter's training 2D is corrupted with
    [lifter_noise] model = "detector"."""

    calibration: NoiseCalibration
    cfg: RefineNoiseSection
    strength: tuple[float, float]

    @classmethod
    def of(cls, cfg: RefineNoiseSection, strength: tuple[float, float]) -> DetectorFrameNoise:
        """The model a [refine_noise] section describes, with the calibration it names."""
        return cls(load_calibration(cfg), cfg, strength)


def corrupt_frames(
    keypoints: torch.Tensor, noise: DetectorFrameNoise, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The detector noise model on clean single frames (N, 17, 2): each a one-frame sequence, so swaps, occlusions,
    misses and spikes occur at their per-frame rates (a frame missing whole has no meaning here and is not drawn
    from). Returns (noisy keypoints, confidences)."""
    strength = uniform(len(keypoints), *noise.strength, gen)
    noisy, conf, _ = corrupt_sequences(keypoints[:, None], noise.calibration, noise.cfg, gen, strength)
    return noisy[:, 0], conf[:, 0]
