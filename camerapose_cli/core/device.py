"""Which torch device a stage or a training runs on: `auto` (the first CUDA GPU if there is one), `cpu`, `cuda`,
`cuda:N`. Checked once, before any input is read. And the precision its networks compute in: `auto` (bf16 where
the device multiplies bf16 in hardware), `fp32`, `bf16`."""

from __future__ import annotations

from contextlib import AbstractContextManager

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


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
# torch's probes for the x86 instructions that multiply bf16 in hardware (private API, so looked up by name).
CPU_BF16_PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 in hardware: CUDA GPUs from Ampere on, x86 CPUs with AVX512-BF16 or AMX.
    Elsewhere torch emulates bf16, slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in CPU_BF16_PROBES)
    return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 where `device` computes it natively, else fp32; `fp32` and `bf16` as named."""
    if name == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return PRECISIONS[name]


def precision_name(dtype: torch.dtype) -> str:
    return next(name for name, known in PRECISIONS.items() if known == dtype)


def compute_in(dtype: torch.dtype, device: torch.device) -> AbstractContextManager:
    """The context a network's forward pass runs in: bf16 autocast (linear layers and convolutions in bf16, the
    rest in fp32) or, for fp32, none. Callers cast the outputs back to fp32 before any geometry."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
