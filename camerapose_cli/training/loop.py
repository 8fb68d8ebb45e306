"""Training loops on one skeleton (`run_loop`: seed, threads, optimizer, resume, logging, save, report).

`train_lifter`: the lifter on synthetic views of mocap, optionally mixed with 2D-only samples (weak
supervision); `train_refiner`: the 2D refiner on corrupted mocap sequences. Each supplies only its batch and
losses. Resumable: `<out>/<model>_last.pt` holds the model, optimizer, step and RNG state; a rerun continues
from it and draws exactly what an uninterrupted run would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli import __version__
from camerapose_cli.config import (
    LifterNoiseSection,
    PoseAugmentSection,
    RefineNoiseSection,
    ScheduleSection,
    SynthSection,
    TrainRefinerSection,
    TrainSection,
    TrainTemporalSection,
    WeakSection,
)
from camerapose_cli.core.device import CPU, resolve_device
from camerapose_cli.core.geometry import lifter_inputs, normalize_track
from camerapose_cli.core.metrics import (
    acceleration_error,
    bone_lengths,
    limb_mpjpe,
    limb_pa_mpjpe,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
)
from camerapose_cli.core.skeleton import H36M17_BONES
from camerapose_cli.errors import TrainingDiverged
from camerapose_cli.io.atomic import atomic_output
from camerapose_cli.io.mocap import MocapSet
from camerapose_cli.models.checkpoints import (
    default_weights,
    load_lifter,
    load_refiner,
    load_temporal,
    read_checkpoint,
    save_checkpoint,
)
from camerapose_cli.models.lifter import Lifter, LifterConfig, LifterOutput
from camerapose_cli.models.refiner import Refiner, RefinerConfig
from camerapose_cli.models.temporal import TemporalLifter, TemporalLifterConfig
from camerapose_cli.training.data import (
    KeypointSequences,
    SyntheticBatch,
    TrackBatch,
    augment_bodies,
    make_batch,
    make_sequences,
    make_track_batch,
    to_device,
)
from camerapose_cli.training.losses import (
    bone_length_prior,
    camera_targets,
    confidence_guided_loss,
    pose_loss,
    refined_confidence_loss,
    reprojection_loss,
    symmetry_prior,
)
from camerapose_cli.training.noise import DetectorFrameNoise, FrameCut, NoiseCalibration
from camerapose_cli.training.weak import WeakSamples

HISTORY_EVERY = 50  # steps between two rows of the loss history in the report
MAX_SKIPPED_IN_A_ROW = 20  # consecutive steps with a non-finite loss or gradient before a run is called diverged
LIFTER_CLIP_NORM = 5.0
REFINER_CLIP_NORM = 1.0
BONE_BAND_SAMPLES = 8192  # augmented training bodies that the bone prior's band is measured on

StepFn = Callable[[np.random.Generator, torch.Generator], dict[str, torch.Tensor]]


@dataclass
class TrainReport:
    history: list[dict[str, float]] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)
    skipped_steps: list[int] = field(default_factory=list)  # steps whose loss or gradient was not finite


class Optimization:
    """A model's optimizer with exponential learning-rate decay, and the resumable state of its run."""

    def __init__(self, model: torch.nn.Module, cfg: ScheduleSection, last: Path, clip_norm: float) -> None:
        self.model, self.last, self.clip_norm = model, last, clip_norm
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
        decay = (cfg.lr_final / cfg.lr) ** (1 / max(cfg.steps, 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, decay)

    def resume(self) -> tuple[int, dict[str, Any]]:
        """(next step, saved extras) from `last`, or (0, {}) for a fresh run."""
        if not self.last.is_file():
            return 0, {}
        state = read_checkpoint(self.last)
        self.model.load_state_dict(state["model"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws continue as if never interrupted
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["step"]), state["extra"]

    def step(self, loss: torch.Tensor) -> bool:
        """One update; none where the loss or its gradient is not finite (one bad batch must not turn every
        weight into NaN). The learning-rate schedule advances either way. Returns whether it updated."""
        self.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
            finite = bool(torch.isfinite(norm))
        if finite:
            self.optimizer.step()
        self.scheduler.step()
        return finite

    def save(self, step: int, extra: dict[str, Any]) -> None:
        save_checkpoint(
            {
                "model": self.model.checkpoint(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": step,
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}),
                "extra": extra,
            },
            self.last,
        )


def seed_and_threads(seed: int, threads: int) -> None:
    """Seed torch (model initialization, dropout) and set the CPU threads (0 = torch's default, every core)."""
    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)


def run_loop(
    model: Lifter | Refiner | TemporalLifter,
    cfg: ScheduleSection,
    last: Path,
    clip_norm: float,
    step_fn: StepFn,
    *,
    save_every: int,
    validate: Callable[[], dict[str, float]] | None = None,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
    device: torch.device = CPU,
) -> tuple[TrainReport, float]:
    """Optimize `model` on `device` for cfg.steps steps of `step_fn` (its losses, on that device; "total" is
    minimized). Every `save_every` steps and at the end: validate (if given) and save the resumable state.
    Returns (report, seconds), with the model back on the CPU."""
    model.to(device)
    opt = Optimization(model, cfg, last, clip_norm)
    start, extra = opt.resume()
    report = TrainReport(**extra.get("report", {}))
    started = time.perf_counter()
    in_a_row = 0
    for step in range(start, cfg.steps):
        # Per-step generators make a resumed run draw exactly what an uninterrupted one would.
        rng = np.random.default_rng([cfg.seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        model.train()
        losses = step_fn(rng, gen)
        if opt.step(losses["total"]):
            in_a_row = 0
        else:
            report.skipped_steps.append(step + 1)
            in_a_row += 1
            if in_a_row >= MAX_SKIPPED_IN_A_ROW:
                raise TrainingDiverged(
                    f"training diverged: {in_a_row} steps in a row up to step {step + 1} had a non-finite loss or"
                    f" gradient; the last good state is {last}"
                )
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if (step + 1) % HISTORY_EVERY == 0:
            report.history.append({"step": step + 1, **logs})
        on_step(step + 1, logs)
        if (step + 1) % save_every == 0 or step + 1 == cfg.steps:
            if validate is not None:
                report.validation.append({"step": step + 1, **validate()})
            opt.save(step + 1, {"report": asdict(report)})
    model.cpu()
    return report, time.perf_counter() - started


def finish(
    model: Lifter | Refiner | TemporalLifter,
    checkpoint: Path,
    report_path: Path,
    report: TrainReport,
    meta: dict[str, Any],
) -> Path:
    """Write the final checkpoint (with `meta`) and the JSON report."""
    save_checkpoint(model.checkpoint({"meta": meta}), checkpoint)
    with atomic_output(report_path) as tmp:
        tmp.write_text(json.dumps({"meta": meta, **asdict(report)}, indent=1))
    return checkpoint


def lifter_losses(
    model_out: LifterOutput, batch: SyntheticBatch, cfg: TrainSection | TrainTemporalSection
) -> dict[str, torch.Tensor]:
    """Paired losses: 3D body points, camera parameters, and reprojection onto the (noisy) 2D input."""
    log_d, root_xy = camera_targets(batch.root, batch.focal, batch.principal, batch.centre, batch.scale)
    principal_n = (batch.principal - batch.centre) / batch.scale[:, None]
    root_depth = model_out.depth_ratio * batch.focal / batch.scale
    losses = {
        "pose": pose_loss(model_out.body, batch.body),
        "camera": torch.nn.functional.smooth_l1_loss(model_out.log_depth_ratio, log_d)
        + torch.nn.functional.smooth_l1_loss(model_out.root_xy, root_xy),
        "reproj": reprojection_loss(
            model_out.coco,
            model_out.log_depth_ratio,
            model_out.root_xy,
            batch.inputs[..., :2],
            batch.inputs[..., 2],
            principal_n,
            root_depth,
        ),
    }
    losses["total"] = cfg.w_pose * losses["pose"] + cfg.w_camera * losses["camera"] + cfg.w_reproj * losses["reproj"]
    return losses


def bone_length_band(
    points: torch.Tensor, synth_cfg: SynthSection, seed: int, quantile: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The range (low, high), each (B,), of H36M bone lengths over augmented training bodies: the bone prior's band."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(points), (BONE_BAND_SAMPLES,), generator=gen)
    lengths = bone_lengths(augment_bodies(points[idx], synth_cfg, gen), H36M17_BONES)
    return torch.quantile(lengths, quantile, dim=0), torch.quantile(lengths, 1 - quantile, dim=0)


def finetune_config(train_cfg: TrainSection, weak_cfg: WeakSection, steps: int | None = None) -> TrainSection:
    """The [train] table turned into a fine-tuning schedule: [weak] finetune_lr decaying tenfold over `steps`
    (default [weak] finetune_steps)."""
    lr = weak_cfg.finetune_lr
    return train_cfg.with_values(lr=lr, lr_final=lr / 10, steps=steps or weak_cfg.finetune_steps)


def weak_inputs(keypoints: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor):
    """The lifter's inputs for 2D-only samples, with what reprojection needs: (inputs, centre, scale)."""
    inputs, centre, scale, _ = lifter_inputs(keypoints[..., :2], keypoints[..., 2], focal, principal)
    return inputs, centre, scale


def weak_losses(
    out: LifterOutput,
    inputs: torch.Tensor,
    centre: torch.Tensor,
    scale: torch.Tensor,
    focal: torch.Tensor,
    bone_band: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """2D-only losses: project where a detector marks the lifted body's keypoints (core.keypoints) through the
    predicted camera and compare with the 2D (confidence-weighted); a bone-length prior keeps reprojection from
    stretching or shrinking limbs along the view ray. The symmetry prior is always computed (a plausibility log) but
    weighted 0 by default (docs/method.md)."""
    principal_n = -centre / scale[:, None]  # the virtual camera's principal point is at 0
    root_depth = out.depth_ratio * focal / scale
    return {
        "weak_reproj": reprojection_loss(
            out.detector_points,
            out.log_depth_ratio,
            out.root_xy,
            inputs[..., :2],
            inputs[..., 2],
            principal_n,
            root_depth,
        ),
        "weak_bone": bone_length_prior(out.pose, *bone_band, H36M17_BONES),
        "weak_symmetry": symmetry_prior(out.pose),
    }


def split_output(out: LifterOutput, n: int) -> tuple[LifterOutput, LifterOutput]:
    """The first n samples' output and the rest's."""
    return (
        LifterOutput(out.body[:n], out.log_depth_ratio[:n], out.root_xy[:n]),
        LifterOutput(out.body[n:], out.log_depth_ratio[n:], out.root_xy[n:]),
    )


@torch.no_grad()
def evaluate_lifter(model: Lifter, batch: SyntheticBatch, out: LifterOutput | None = None) -> dict[str, float]:
    """MPJPE family in millimetres on the 17 H36M joints, plus the 2D reprojection error in pixels.
    `out` is the model's output on `batch`, when the caller already has it."""
    if out is None:
        model.eval()
        out = model(batch.inputs)
    pred, target = out.pose * 1000, batch.body[:, : out.pose.shape[1]] * 1000
    principal_n = (batch.principal - batch.centre) / batch.scale[:, None]
    root_depth = out.depth_ratio * batch.focal / batch.scale
    reproj = reprojection_loss(
        out.coco,
        out.log_depth_ratio,
        out.root_xy,
        batch.inputs[..., :2],
        torch.ones_like(batch.inputs[..., 2]),
        principal_n,
        root_depth,
    )
    return {
        "mpjpe_mm": float(mpjpe(pred, target)),
        "pa_mpjpe_mm": float(pa_mpjpe(pred, target)),
        "n_mpjpe_mm": float(n_mpjpe(pred, target)),
        "limb_mpjpe_mm": float(limb_mpjpe(pred, target)),
        "limb_pa_mpjpe_mm": float(limb_pa_mpjpe(pred, target)),
        "reproj_px_at_scale100": float(reproj * 100),  # in pixels for a person 200 px tall
    }


def sample_frames(frames: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return frames[rng.integers(0, len(frames), count)]


def training_meta(steps: int, train_clips: list[str], seconds: float, init: Path | None, **more: Any) -> dict[str, Any]:
    """What every trained checkpoint records about how it was made, plus the model's own `more`."""
    return {
        "tool_version": __version__,
        "steps": steps,
        "train_clips": len(train_clips),
        "seconds": round(seconds, 1),
        "init": str(init) if init is not None else "",
        **more,
    }


def last_validation(report: TrainReport) -> dict[str, float]:
    return report.validation[-1] if report.validation else {}


def train_lifter(
    mocap: MocapSet,
    train_clips: list[str],
    val_clips: list[str],
    synth_cfg: SynthSection,
    noise_cfg: LifterNoiseSection | DetectorFrameNoise,
    train_cfg: TrainSection,
    out_dir: Path,
    *,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
    extra_meta: dict | None = None,
    weak: WeakSamples | None = None,
    weak_cfg: WeakSection | None = None,
    init: Path | None = None,
    poses: PoseAugmentSection | None = None,
) -> Path:
    """Train (or resume) a lifter; write `<out>/lifter.pt`, `<out>/last.pt` and `<out>/report.json`.

    With `weak` every step also takes a batch of 2D-only samples (`weak_cfg`, the preset's [weak] table).
    `init` starts from a checkpoint's weights (fine-tuning) instead of from scratch.
    """
    seed = train_cfg.seed
    seed_and_threads(seed, train_cfg.threads)
    if init is not None:
        model = load_lifter(init).train()
    else:
        model = Lifter(LifterConfig(train_cfg.hidden, train_cfg.blocks, train_cfg.dropout))
    train_frames = mocap.frames_of(train_clips)
    points = torch.from_numpy(mocap.points)
    val_gen = torch.Generator().manual_seed(seed + 1)
    val_idx = sample_frames(mocap.frames_of(val_clips), train_cfg.val_samples, np.random.default_rng(seed + 1))
    device = resolve_device(train_cfg.device)
    val_batch = to_device(make_batch(points[val_idx], synth_cfg, val_gen, None, augment=False), device)
    if weak is not None:
        assert weak_cfg is not None
        band = bone_length_band(points[torch.from_numpy(train_frames)], synth_cfg, seed, weak_cfg.bone_quantile)
        bone_band = (band[0].to(device), band[1].to(device))
        weak_kp, weak_focal, weak_principal = (
            torch.from_numpy(a).to(device) for a in (weak.keypoints, weak.focal, weak.principal)
        )

    def step_fn(rng: np.random.Generator, gen: torch.Generator) -> dict[str, torch.Tensor]:
        batch = make_batch(
            points[sample_frames(train_frames, train_cfg.batch_size, rng)],
            synth_cfg,
            gen,
            noise_cfg,
            poses=poses,
            poses_share=train_cfg.pose_augment_prob,
        )
        batch = to_device(batch, device)
        if weak is None:
            return lifter_losses(model(batch.inputs), batch, train_cfg)
        pick = torch.from_numpy(rng.integers(0, len(weak_kp), weak_cfg.batch_size)).to(device)
        w_inputs, w_centre, w_scale = weak_inputs(weak_kp[pick], weak_focal[pick], weak_principal[pick])
        # One forward pass for both, normalized with the paired samples' BatchNorm statistics (models/lifter.py).
        n = len(batch.inputs)
        paired_out, weak_out = split_output(model(torch.cat([batch.inputs, w_inputs]), stats_from=n), n)
        losses = lifter_losses(paired_out, batch, train_cfg)
        losses.update(weak_losses(weak_out, w_inputs, w_centre, w_scale, weak_focal[pick], bone_band))
        losses["total"] = losses["total"] + (
            weak_cfg.w_reproj * losses["weak_reproj"]
            + weak_cfg.w_bone * losses["weak_bone"]
            + weak_cfg.w_symmetry * losses["weak_symmetry"]
        )
        return losses

    report, seconds = run_loop(
        model,
        train_cfg,
        out_dir / "last.pt",
        LIFTER_CLIP_NORM,
        step_fn,
        save_every=train_cfg.val_every,
        validate=lambda: evaluate_lifter(model, val_batch),
        on_step=on_step,
        device=device,
    )
    meta = training_meta(
        train_cfg.steps, train_clips, seconds, init, validation=last_validation(report), **(extra_meta or {})
    )
    return finish(model, out_dir / "lifter.pt", out_dir / "report.json", report, meta)


def refiner_batch(
    mocap: MocapSet,
    starts_by_stride: dict[int, np.ndarray],
    cfg: TrainRefinerSection,
    window: int,
    synth_cfg: SynthSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> tuple[KeypointSequences, torch.Tensor, torch.Tensor]:
    """A batch of corrupted sequences at a random frame stride, some cut by an image edge ([train_refiner]
    frame_cut_prob; the truth stays where the body is), normalized per track: (sequences, noisy, clean)."""
    stride = int(rng.choice(list(starts_by_stride)))
    starts = starts_by_stride[stride][rng.integers(0, len(starts_by_stride[stride]), cfg.batch_size)]
    cut = FrameCut.of(synth_cfg, cfg.frame_cut_prob)
    seq = make_sequences(mocap.points, starts, window, stride, synth_cfg, noise_cfg, calibration, gen, cut)
    noisy, centre, scale = normalize_track(seq.noisy, seq.conf, seq.present)
    clean = (seq.clean - centre[:, None, None]) / scale[:, None, None, None]
    return seq, noisy, clean


def refiner_losses(
    model: Refiner, noisy: torch.Tensor, clean: torch.Tensor, seq: KeypointSequences, cfg: TrainRefinerSection
) -> dict[str, torch.Tensor]:
    """The confidence-guided loss on the refined keypoints, and the refined confidence's loss."""
    out = model(torch.cat([noisy, seq.conf[..., None]], -1), seq.present)
    guided = confidence_guided_loss(
        out.keypoints, clean, noisy, seq.conf, seq.present, cfg.anchor, cfg.trust_floor, cfg.trust_power
    )
    conf_loss = refined_confidence_loss(out.conf_logit, out.keypoints, clean, cfg.conf_tolerance)
    return {"guided": guided, "conf": conf_loss, "total": guided + cfg.w_conf * conf_loss}


def valid_window_starts(clip_starts: np.ndarray, clip_ends: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Every frame index from which a window of `length` frames at `stride` stays inside its clip."""
    span = (length - 1) * stride
    return np.concatenate(
        [np.arange(s, e - span) for s, e in zip(clip_starts, clip_ends) if e - s > span] or [np.zeros(0, np.int64)]
    )


def train_refiner(
    mocap: MocapSet,
    train_clips: list[str],
    cfg: TrainRefinerSection,
    window: int,
    synth_cfg: SynthSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    out_dir: Path,
    *,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
    init: Path | None = None,
) -> Path:
    """Train (or resume) the refiner on corrupted mocap sequences of `window` frames; write `<out>/refiner.pt` and
    `<out>/refiner_report.json`. `init` starts from a refiner checkpoint's weights instead of from scratch."""
    seed_and_threads(cfg.seed, cfg.threads)
    model = load_refiner(init).train() if init is not None else Refiner(RefinerConfig(channels=cfg.channels))
    index = {n: i for i, n in enumerate(mocap.names)}
    clip_starts = np.array([mocap.starts[index[n]] for n in train_clips])
    clip_ends = np.array([mocap.starts[index[n] + 1] for n in train_clips])
    starts_by_stride = {s: valid_window_starts(clip_starts, clip_ends, window, s) for s in cfg.stride}
    device = resolve_device(cfg.device)

    def step_fn(rng: np.random.Generator, gen: torch.Generator) -> dict[str, torch.Tensor]:
        seq, noisy, clean = refiner_batch(
            mocap, starts_by_stride, cfg, window, synth_cfg, noise_cfg, calibration, rng, gen
        )
        return refiner_losses(model, noisy.to(device), clean.to(device), to_device(seq, device), cfg)

    report, seconds = run_loop(
        model,
        cfg,
        out_dir / "refiner_last.pt",
        REFINER_CLIP_NORM,
        step_fn,
        save_every=cfg.save_every,
        on_step=on_step,
        device=device,
    )
    meta = training_meta(cfg.steps, train_clips, seconds, init, anchor=cfg.anchor)
    return finish(model, out_dir / "refiner.pt", out_dir / "refiner_report.json", report, meta)


def temporal_losses(model: TemporalLifter, batch: TrackBatch, cfg: TrainTemporalSection) -> dict[str, torch.Tensor]:
    """The single-frame lifter's losses on every output frame, and the joints' frame-to-frame motion."""
    out = model(batch.inputs, batch.present)
    losses = lifter_losses(out, batch.frames, cfg)
    k = batch.outputs
    pred = out.body.reshape(-1, k, *out.body.shape[1:])
    true = batch.frames.body.reshape(-1, k, *batch.frames.body.shape[1:])
    losses["velocity"] = ((pred[:, 1:] - pred[:, :-1]) - (true[:, 1:] - true[:, :-1])).norm(dim=-1).mean()
    losses["total"] = losses["total"] + cfg.w_velocity * losses["velocity"]
    return losses


@torch.no_grad()
def evaluate_temporal(model: TemporalLifter, batch: TrackBatch) -> dict[str, float]:
    """The MPJPE family (mm) of the output frames, and their acceleration error (mm/frame^2)."""
    model.eval()
    out = model(batch.inputs, batch.present)
    scores = evaluate_lifter(model, batch.frames, out)  # type: ignore[arg-type]
    k = batch.outputs
    pred = out.pose.reshape(-1, k, *out.pose.shape[1:]).transpose(0, 1) * 1000  # time first
    true = batch.frames.body[:, : out.pose.shape[1]].reshape(-1, k, *out.pose.shape[1:]).transpose(0, 1) * 1000
    scores["accel_mm"] = float(acceleration_error(pred, true))
    return scores


def train_temporal(
    mocap: MocapSet,
    train_clips: list[str],
    val_clips: list[str],
    synth_cfg: SynthSection,
    poses: PoseAugmentSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    cfg: TrainTemporalSection,
    out_dir: Path,
    *,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
    extra_meta: dict | None = None,
    init: Path | None = None,
    base: Path | None = None,
) -> Path:
    """Train (or resume) the temporal lifter on windows of mocap filmed by (moving) virtual cameras, with
    detector-like noise; write `<out>/temporal.pt`, `<out>/temporal_last.pt` and `<out>/temporal_report.json`.
    From scratch, its frozen single-frame lifter is `base` (default: the shipped one); `init` continues a
    temporal checkpoint instead."""
    base = base if base is not None else default_weights("lifter")
    seed_and_threads(cfg.seed, cfg.threads)
    if init is not None:
        model = load_temporal(init).train()
    else:
        config = TemporalLifterConfig(cfg.channels, 3, cfg.dilations, cfg.dropout, cfg.fps)
        model = TemporalLifter(load_lifter(base), config)
    points = torch.from_numpy(mocap.points)
    train_frames, val_frames = mocap.frames_of(train_clips), mocap.frames_of(val_clips)
    clip_fps = mocap.fps.astype(np.float64)

    device = resolve_device(cfg.device)

    def windows(frames: np.ndarray, count: int, rng: np.random.Generator, gen: torch.Generator) -> TrackBatch:
        centres = sample_frames(frames, count, rng)
        field = model.receptive_field
        batch = make_track_batch(
            points, mocap.starts, clip_fps, centres, field, synth_cfg, cfg, poses, noise_cfg, calibration, rng, gen
        )
        return to_device(batch, device)

    val_batch = windows(
        val_frames, cfg.val_windows, np.random.default_rng(cfg.seed + 1), torch.Generator().manual_seed(cfg.seed + 1)
    )
    report, seconds = run_loop(
        model,
        cfg,
        out_dir / "temporal_last.pt",
        LIFTER_CLIP_NORM,
        lambda rng, gen: temporal_losses(model, windows(train_frames, cfg.batch_size, rng, gen), cfg),
        save_every=cfg.val_every,
        validate=lambda: evaluate_temporal(model, val_batch),
        on_step=on_step,
        device=device,
    )
    meta = training_meta(
        cfg.steps,
        train_clips,
        seconds,
        init,
        receptive_field=model.receptive_field,
        base_lifter=str(base) if init is None else "",
        validation=last_validation(report),
        **(extra_meta or {}),
    )
    return finish(model, out_dir / "temporal.pt", out_dir / "temporal_report.json", report, meta)
