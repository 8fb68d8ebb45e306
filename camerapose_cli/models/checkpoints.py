"""Checkpoints of the lifter and the refiner: the shipped defaults, safe loading, kind checks, saving.

A checkpoint is a plain dict of tensors and numbers: {"kind", "config", "state_dict", ...}. It is loaded with
`weights_only=True`, so a file from elsewhere cannot run code; anything else is a CheckpointError.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from camerapose_cli.config import ModelKind
from camerapose_cli.errors import CheckpointError
from camerapose_cli.io.atomic import atomic_output
from camerapose_cli.io.resources import shipped_dir
from camerapose_cli.models.lifter import Lifter
from camerapose_cli.models.refiner import Refiner
from camerapose_cli.models.temporal import TemporalLifter

Model = Lifter | Refiner | TemporalLifter
MODELS: dict[str, type[Model]] = {"lifter": Lifter, "refiner": Refiner, "temporal": TemporalLifter}


def default_weights(model: ModelKind) -> Path:
    """The shipped checkpoint: weights/lifter.pt, weights/refiner.pt or weights/temporal.pt."""
    return shipped_dir("weights") / f"{model}.pt"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The dict stored in `path`, loaded without running any pickled code."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe pickle"
        raise CheckpointError(f"{path}: not a camerapose checkpoint (it holds more than tensors: {first})") from None
    except Exception as exc:  # torch.load raises many kinds on a file that is not a checkpoint at all
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a camerapose checkpoint (a {type(data).__name__}, not a dict)")
    return data


def load_model(path: Path, model: ModelKind) -> Model:
    """A lifter, refiner or temporal lifter from its checkpoint, in eval mode, fp32."""
    cls = MODELS[model]
    checkpoint = read_checkpoint(path)
    if checkpoint.get("kind") != cls.KIND:
        found = checkpoint.get("kind", "no kind")
        raise CheckpointError(f"{path}: not a camerapose {model} checkpoint ({found})")
    try:
        return cls.from_checkpoint(checkpoint)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: a damaged {model} checkpoint ({exc.__class__.__name__}: {exc})") from None


def load_lifter(path: Path) -> Lifter:
    return load_model(path, "lifter")  # type: ignore[return-value]


def load_refiner(path: Path) -> Refiner:
    return load_model(path, "refiner")  # type: ignore[return-value]


def load_temporal(path: Path) -> TemporalLifter:
    return load_model(path, "temporal")  # type: ignore[return-value]


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write atomically: the file appears complete or not at all."""
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def to_half(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The same checkpoint with fp16 weights (models load them back as fp32): half the size on disk."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in checkpoint["state_dict"].items()}
    return {**checkpoint, "state_dict": state}
