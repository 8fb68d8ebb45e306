"""Training loops. `train_lifter`: the lifter on synthetic views of mocap, optionally mixed with 2D-only samples
(weak supervision); `train_refiner`: the 2D refiner on corrupted mocap sequences.

Resumable: `<out>/last.pt` holds the model, optimizer and step; a rerun continues from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli import __version__
from camerapose_cli.atomic import atomic_output
from camerapose_cli.geometry import lifter_inputs
from camerapose_cli.losses import bone_length_prior, camera_targets, pose_loss, reprojection_loss, symmetry_prior
from camerapose_cli.metrics import bone_lengths, mpjpe, n_mpjpe, pa_mpjpe
from camerapose_cli.mocap import MocapSet
from camerapose_cli.models.lifter import Lifter, LifterConfig, LifterOutput
from camerapose_cli.skeleton import H36M17_BONES
from camerapose_cli.synth import SyntheticBatch, augment_bodies, make_batch


@dataclass
class TrainReport:
    history: list[dict[str, float]] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)


def save_torch(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


class Optimization:
    """A model's optimizer with exponential learning-rate decay, and the resumable state of its run."""

    def __init__(self, model: torch.nn.Module, cfg: dict[str, Any], last: Path, clip_norm: float) -> None:
        self.model, self.last, self.clip_norm = model, last, clip_norm
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=0.0)
        steps = int(cfg["steps"])
        decay = (float(cfg["lr_final"]) / float(cfg["lr"])) ** (1 / max(steps, 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, decay)

    def resume(self) -> tuple[int, dict[str, Any]]:
        """(next step, saved extras) from `last`, or (0, {}) for a fresh run."""
        if not self.last.is_file():
            return 0, {}
        state = torch.load(self.last, weights_only=False)
        self.model.load_state_dict(state["model"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws continue as if never interrupted
        return int(state["step"]), state["extra"]

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.optimizer.step()
        self.scheduler.step()

    def save(self, step: int, extra: dict[str, Any]) -> None:
        save_torch({"model": self.model.checkpoint(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
                    "extra": extra}, self.last)  # fmt: skip


def lifter_losses(model_out: LifterOutput, batch: SyntheticBatch, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Paired losses: 3D body points, camera parameters, and reprojection onto the (noisy) 2D input."""
    log_d, root_xy = camera_targets(batch.root, batch.focal, batch.principal, batch.centre, batch.scale)
    principal_n = (batch.principal - batch.centre) / batch.scale[:, None]
    root_depth = model_out.depth_ratio * batch.focal / batch.scale
    losses = {
        "pose": pose_loss(model_out.body, batch.body),
        "camera": torch.nn.functional.smooth_l1_loss(model_out.log_depth_ratio, log_d)
        + torch.nn.functional.smooth_l1_loss(model_out.root_xy, root_xy),
        "reproj": reprojection_loss(
            model_out.coco, model_out.log_depth_ratio, model_out.root_xy, batch.inputs[..., :2],
            batch.inputs[..., 2], principal_n, root_depth,
        ),  # fmt: skip
    }
    losses["total"] = sum(weights[f"w_{k}"] * v for k, v in losses.items())
    return losses


def bone_length_band(points: torch.Tensor, synth_cfg: dict[str, Any], seed: int, quantile: float, count: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """The range (low, high), each (B,), of H36M bone lengths over augmented training bodies: the bone prior's band."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(points), (count,), generator=gen)
    lengths = bone_lengths(augment_bodies(points[idx], synth_cfg, gen), H36M17_BONES)
    return torch.quantile(lengths, quantile, dim=0), torch.quantile(lengths, 1 - quantile, dim=0)


def finetune_config(train_cfg: dict[str, Any], weak_cfg: dict[str, Any], steps: int | None = None) -> dict[str, Any]:
    """The [train] table turned into a fine-tuning schedule: [weak] finetune_lr decaying tenfold over `steps`
    (default [weak] finetune_steps)."""
    lr = float(weak_cfg["finetune_lr"])
    return {**train_cfg, "lr": lr, "lr_final": lr / 10, "steps": int(steps or weak_cfg["finetune_steps"])}


def weak_inputs(keypoints: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor):
    """The lifter's inputs for 2D-only samples, with what reprojection needs: (inputs, centre, scale)."""
    inputs, centre, scale, _ = lifter_inputs(keypoints[..., :2], keypoints[..., 2], focal, principal)
    return inputs, centre, scale


def weak_losses(out: LifterOutput, inputs: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor, focal: torch.Tensor,
                bone_band: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:  # fmt: skip
    """2D-only losses: project the lifted pose through the predicted camera, compare with the 2D (confidence-weighted);
    a bone-length prior keeps reprojection from stretching or shrinking limbs along the view ray. The symmetry
    prior is always computed (a plausibility log) but weighted 0 by default (docs/method.md)."""
    principal_n = -centre / scale[:, None]  # the virtual camera's principal point is at 0
    root_depth = out.depth_ratio * focal / scale
    return {
        "weak_reproj": reprojection_loss(out.coco, out.log_depth_ratio, out.root_xy, inputs[..., :2], inputs[..., 2],
                                         principal_n, root_depth),  # fmt: skip
        "weak_bone": bone_length_prior(out.pose, *bone_band, H36M17_BONES),
        "weak_symmetry": symmetry_prior(out.pose),
    }


def split_output(out: LifterOutput, n: int) -> tuple[LifterOutput, LifterOutput]:
    """The first n samples' output and the rest's."""
    return (LifterOutput(out.body[:n], out.log_depth_ratio[:n], out.root_xy[:n]),
            LifterOutput(out.body[n:], out.log_depth_ratio[n:], out.root_xy[n:]))  # fmt: skip


@torch.no_grad()
def evaluate_lifter(model: Lifter, batch: SyntheticBatch) -> dict[str, float]:
    """MPJPE family in millimetres on the 17 H36M joints, plus the 2D reprojection error in pixels."""
    model.eval()
    out = model(batch.inputs)
    pred, target = out.pose * 1000, batch.body[:, : out.pose.shape[1]] * 1000
    principal_n = (batch.principal - batch.centre) / batch.scale[:, None]
    root_depth = out.depth_ratio * batch.focal / batch.scale
    reproj = reprojection_loss(out.coco, out.log_depth_ratio, out.root_xy, batch.inputs[..., :2],
                               torch.ones_like(batch.inputs[..., 2]), principal_n, root_depth)  # fmt: skip
    return {
        "mpjpe_mm": float(mpjpe(pred, target)),
        "pa_mpjpe_mm": float(pa_mpjpe(pred, target)),
        "n_mpjpe_mm": float(n_mpjpe(pred, target)),
        "reproj_px_at_scale100": float(reproj * 100),  # in pixels for a person 200 px tall
    }


def sample_frames(frames: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return frames[rng.integers(0, len(frames), count)]


def train_lifter(
    mocap: MocapSet,
    train_clips: list[str],
    val_clips: list[str],
    synth_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    out_dir: Path,
    *,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
    extra_meta: dict | None = None,
    weak=None,
    weak_cfg: dict[str, Any] | None = None,
    init: Path | None = None,
) -> Path:
    """Train (or resume) a lifter; write `<out>/lifter.pt`, `<out>/last.pt` and `<out>/report.json`.

    With `weak` (weak2d.WeakSamples) every step also takes a batch of 2D-only samples (`weak_cfg`, the
    preset's [weak] table). `init` starts from a checkpoint's weights (fine-tuning) instead of from scratch.
    """
    seed = int(train_cfg["seed"])
    torch.manual_seed(seed)
    threads = int(train_cfg.get("threads", 0))
    if threads > 0:
        torch.set_num_threads(threads)
    if init is not None:
        model = Lifter.from_checkpoint(torch.load(init, map_location="cpu", weights_only=False)).train()
    else:
        model = Lifter(LifterConfig(int(train_cfg["hidden"]), int(train_cfg["blocks"]), float(train_cfg["dropout"])))
    steps = int(train_cfg["steps"])
    opt = Optimization(model, train_cfg, out_dir / "last.pt", clip_norm=5.0)
    start, extra = opt.resume()
    report = TrainReport(**extra.get("report", {}))
    train_frames = mocap.frames_of(train_clips)
    val_frames = mocap.frames_of(val_clips)
    points = torch.from_numpy(mocap.points)
    val_gen = torch.Generator().manual_seed(seed + 1)
    val_idx = sample_frames(val_frames, int(train_cfg["val_samples"]), np.random.default_rng(seed + 1))
    val_batch = make_batch(points[val_idx], synth_cfg, val_gen, augment=False, corrupt=False)
    weights = {k: float(train_cfg[k]) for k in ("w_pose", "w_camera", "w_reproj")}
    batch_size = int(train_cfg["batch_size"])
    val_every = int(train_cfg["val_every"])
    if weak is not None:
        bone_band = bone_length_band(points[torch.from_numpy(train_frames)], synth_cfg, seed, float(weak_cfg["bone_quantile"]))
        weak_kp, weak_focal, weak_principal = (torch.from_numpy(a) for a in (weak.keypoints, weak.focal, weak.principal))
        weak_weights = {k: float(weak_cfg[k]) for k in ("w_reproj", "w_bone", "w_symmetry")}
    started = time.perf_counter()
    for step in range(start, steps):
        # Per-step generators make a resumed run draw exactly what an uninterrupted one would.
        rng = np.random.default_rng([seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        batch = make_batch(points[sample_frames(train_frames, batch_size, rng)], synth_cfg, gen)
        model.train()
        if weak is None:
            losses = lifter_losses(model(batch.inputs), batch, weights)
        else:
            pick = torch.from_numpy(rng.integers(0, len(weak_kp), int(weak_cfg["batch_size"])))
            w_inputs, w_centre, w_scale = weak_inputs(weak_kp[pick], weak_focal[pick], weak_principal[pick])
            # One forward pass for both, normalized with the paired samples' BatchNorm statistics (models/lifter.py).
            # (Freezing BatchNorm for a separate 2D-only pass was measured worse: docs/experiments.md.)
            n = len(batch.inputs)
            paired_out, weak_out = split_output(model(torch.cat([batch.inputs, w_inputs]), stats_from=n), n)
            losses = lifter_losses(paired_out, batch, weights)
            losses.update(weak_losses(weak_out, w_inputs, w_centre, w_scale, weak_focal[pick], bone_band))
            losses["total"] = losses["total"] + sum(w * losses[f"weak_{k[2:]}"] for k, w in weak_weights.items())
        opt.step(losses["total"])
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if (step + 1) % 50 == 0:
            report.history.append({"step": step + 1, **logs})
        on_step(step + 1, logs)
        if (step + 1) % val_every == 0 or step + 1 == steps:
            metrics = {"step": step + 1, **evaluate_lifter(model, val_batch)}
            report.validation.append(metrics)
            opt.save(step + 1, {"report": report.__dict__})
    final = out_dir / "lifter.pt"
    meta = {
        "tool_version": __version__,
        "steps": steps,
        "train_clips": len(train_clips),
        "seconds": round(time.perf_counter() - started, 1),
        "validation": report.validation[-1] if report.validation else {},
        **(extra_meta or {}),
    }
    save_torch(model.checkpoint({"meta": meta}), final)
    with atomic_output(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, **report.__dict__}, indent=1))
    return final


def export_half(checkpoint_path: Path, out_path: Path) -> None:
    """A copy of a lifter checkpoint with fp16 weights (loaded back as fp32)."""
    ckpt = torch.load(checkpoint_path, weights_only=False)
    ckpt["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    save_torch(ckpt, out_path)



def refiner_batch(mocap: MocapSet, starts_by_stride: dict[int, np.ndarray], cfg: dict[str, Any], synth_cfg: dict[str, Any],
                  noise_cfg: dict[str, Any], calibration, rng: np.random.Generator, gen: torch.Generator, batch_size: int):  # fmt: skip
    """A batch of corrupted sequences at a random frame stride, normalized per track."""
    from camerapose_cli.geometry import normalize_track
    from camerapose_cli.sequences import make_sequences

    stride = int(rng.choice(list(starts_by_stride)))
    starts = starts_by_stride[stride][rng.integers(0, len(starts_by_stride[stride]), batch_size)]
    seq = make_sequences(mocap.points, starts, int(cfg["window"]), stride, synth_cfg, noise_cfg, calibration, gen)
    noisy, centre, scale = normalize_track(seq.noisy, seq.conf, seq.present)
    clean = (seq.clean - centre[:, None, None]) / scale[:, None, None, None]
    return seq, noisy, clean


def refiner_losses(model, noisy: torch.Tensor, clean: torch.Tensor, seq, cfg: dict[str, Any], anchor: float):
    from camerapose_cli.losses import confidence_guided_loss, refined_confidence_loss

    inputs = torch.cat([noisy, seq.conf[..., None]], -1)
    out = model(inputs, seq.present)
    guided = confidence_guided_loss(out.keypoints, clean, noisy, seq.conf, seq.present, anchor,
                                    float(cfg["trust_floor"]), float(cfg["trust_power"]))  # fmt: skip
    conf_loss = refined_confidence_loss(out.conf_logit, out.keypoints, clean, float(cfg["conf_tolerance"]))
    return out, {"guided": guided, "conf": conf_loss, "total": guided + float(cfg["w_conf"]) * conf_loss}


def train_refiner(
    mocap: MocapSet,
    train_clips: list[str],
    refine_cfg: dict[str, Any],
    synth_cfg: dict[str, Any],
    noise_cfg: dict[str, Any],
    calibration,
    out_dir: Path,
    *,
    anchor: float | None = None,
    on_step: Callable[[int, dict[str, float]], None] = lambda step, logs: None,
) -> Path:
    """Train (or resume) the refiner on corrupted mocap sequences; write `<out>/refiner.pt` and a report."""
    from camerapose_cli.models.refiner import Refiner, RefinerConfig
    from camerapose_cli.sequences import valid_window_starts

    seed = int(refine_cfg["seed"])
    anchor = float(refine_cfg["anchor"] if anchor is None else anchor)
    torch.manual_seed(seed)
    if int(refine_cfg.get("threads", 0)) > 0:
        torch.set_num_threads(int(refine_cfg["threads"]))
    model = Refiner(RefinerConfig(channels=int(refine_cfg["channels"])))
    steps = int(refine_cfg["steps"])
    opt = Optimization(model, refine_cfg, out_dir / "refiner_last.pt", clip_norm=1.0)
    start, extra = opt.resume()
    history: list[dict[str, float]] = extra.get("history", [])
    index = {n: i for i, n in enumerate(mocap.names)}
    clip_starts = np.array([mocap.starts[index[n]] for n in train_clips])
    clip_ends = np.array([mocap.starts[index[n] + 1] for n in train_clips])
    starts_by_stride = {s: valid_window_starts(clip_starts, clip_ends, int(refine_cfg["window"]), s) for s in refine_cfg["stride"]}
    started = time.perf_counter()
    for step in range(start, steps):
        rng = np.random.default_rng([seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        seq, noisy, clean = refiner_batch(mocap, starts_by_stride, refine_cfg, synth_cfg, noise_cfg, calibration, rng, gen,
                                          int(refine_cfg["batch_size"]))  # fmt: skip
        model.train()
        _, losses = refiner_losses(model, noisy, clean, seq, refine_cfg, anchor)
        opt.step(losses["total"])
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if (step + 1) % 50 == 0:
            history.append({"step": step + 1, **logs})
        on_step(step + 1, logs)
        if (step + 1) % 500 == 0 or step + 1 == steps:
            opt.save(step + 1, {"history": history})
    meta = {"tool_version": __version__, "steps": steps, "anchor": anchor, "train_clips": len(train_clips),
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    final = out_dir / "refiner.pt"
    save_torch(model.checkpoint({"meta": meta}), final)
    with atomic_output(out_dir / "refiner_report.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "history": history}, indent=1))
    return final
