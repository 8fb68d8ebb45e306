"""Which torch device a stage or a training runs on: `auto` (the first CUDA GPU if there is one), `cpu`, `cuda`,
`cuda:N`. Checked once, before any input is read."""

from __future__ import annotations

import torch

from camerapose_cli.errors import UsageError

CPU = torch.device("cpu")


def resolve_device(name: str) -> torch.device:
    """`auto` picks the first CUDA GPU when there is one, else the CPU; CUDA asked for without one is a UsageError."""
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a model's weights are: where its inputs must go."""
    return next(module.parameters()).device
