"""Inference engines for the YOLO pose network: PyTorch on any device, or OpenVINO on the CPU.

Both take a letterboxed batch of uint8 RGB frames (B, H, W, 3) and return the raw predictions (B, 5 + 51, anchors)
that Ultralytics' NMS expects, so everything before and after the network is shared. Each scales the pixels to
[0, 1] channels-first itself: PyTorch on the batch's device, OpenVINO inside the compiled model. The OpenVINO
model is converted from the loaded checkpoint once, offline, into the cache folder (`~/.cache/camerapose` or
$CAMERAPOSE_CACHE) and compiled once per process.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Protocol

import torch

from camerapose_cli import __version__
from camerapose_cli.config import Backend
from camerapose_cli.errors import UsageError
from camerapose_cli.io.resources import cache_dir, file_sha256

# The shape the network is traced with for conversion; the converted model takes any batch and input size.
TRACE_INPUT = (1, 3, 640, 640)


class PoseEngine(Protocol):
    name: str
    precision: str  # what the network computes in: f32, f16 or bf16

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...  # letterboxed uint8 (B, H, W, 3) → predictions


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def import_openvino() -> ModuleType:
    """Import OpenVINO without its usage telemetry. Importing the package loads its conversion tools, which report
    the import to Intel over the network unless they run under CI; they are told they do, for the import only."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        import openvino
    finally:
        if saved is None:
            del os.environ["CI"]
        else:
            os.environ["CI"] = saved
    return openvino


def resolve_backend(backend: Backend, device: torch.device) -> str:
    """`auto`: OpenVINO on the CPU where it is installed (docs/performance.md: about twice the detector speed of
    PyTorch here), PyTorch on CUDA. Asking for OpenVINO on CUDA, or without it installed, is a usage error."""
    if backend == "auto":
        return "openvino" if device.type == "cpu" and openvino_available() else "torch"
    if backend == "openvino":
        if device.type != "cpu":
            raise UsageError(f"--backend openvino runs on the CPU only, not on {device}; use --backend torch")
        if not openvino_available():
            raise UsageError("--backend openvino needs the openvino package: pip install openvino")
    return backend


class PredictionsOnly(torch.nn.Module):
    """The pose network in Ultralytics' export mode: one tensor out, anchors rebuilt for each input size."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        from ultralytics.nn.modules.head import Detect

        for module in net.modules():
            if isinstance(module, Detect):
                module.export, module.dynamic, module.format = True, True, "openvino"
        self.net = net

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return predictions(self.net(batch))


def predictions(out: torch.Tensor | tuple | list) -> torch.Tensor:
    """The raw predictions of the network's output: outside export mode it also returns the head's features."""
    return out[0] if isinstance(out, (tuple, list)) else out


class TorchEngine:
    name = "torch"

    def __init__(self, net: torch.nn.Module, half: bool) -> None:
        self.net = net
        self.precision = "f16" if half else "f32"

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        batch = frames.permute(0, 3, 1, 2)  # kept channels-last in memory: faster convolutions on the CPU here
        batch = batch.half() if self.precision == "f16" else batch.float()
        return predictions(self.net(batch / 255.0))


def openvino_model_path(checkpoint: Path) -> Path:
    """Where the converted model of a checkpoint lives: keyed by its content and both tools' versions."""
    openvino = import_openvino()
    key = f"{file_sha256(checkpoint)[:16]}-ov{openvino.__version__.split('-')[0]}-cp{__version__}"
    return cache_dir() / "openvino" / f"{checkpoint.stem}-{key}" / "model.xml"


def convert_to_openvino(net: torch.nn.Module, target: Path) -> Path:
    """Convert the (fused, fp32, CPU) network to OpenVINO IR at `target`: written beside it, then renamed, so a
    crash or a second process converting at the same time never leaves a half-written model. Uses OpenVINO's
    PyTorch frontend directly: `openvino.convert_model` would report each conversion to Intel."""
    openvino = import_openvino()
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    target.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow in the head
            decoder = TorchScriptPythonDecoder(PredictionsOnly(net).eval(), example_input=(torch.zeros(TRACE_INPUT),))
        frontend = FrontEndManager().load_by_framework("pytorch")
        model = frontend.convert(frontend.load(decoder))
        model.reshape([-1, TRACE_INPUT[1], -1, -1])  # any batch and input size
        openvino.save_model(model, str(staging / target.name), compress_to_fp16=False)
        try:
            staging.rename(target.parent)
        except OSError:  # another process finished first: its model is the same
            if not target.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def with_pixel_input(model):
    """The converted network taking uint8 RGB frames (B, H, W, 3): the scaling to [0, 1] and the transpose to
    channels-first run inside the compiled model, fused, instead of in PyTorch before it (0.7 ms per frame here)."""
    from openvino import Layout, Type
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC"))
    steps.input().model().set_layout(Layout("NCHW"))
    steps.input().preprocess().convert_element_type(Type.f32).scale(255.0)
    return steps.build()


class OpenVinoEngine:
    """The network compiled by OpenVINO for the CPU, at the precision it picks there (bf16 on CPUs with bf16
    instructions, fp32 elsewhere: `precision`)."""

    name = "openvino"

    def __init__(self, net: torch.nn.Module, checkpoint: Path, threads: int) -> None:
        openvino = import_openvino()
        path = openvino_model_path(checkpoint)
        if not path.is_file():
            convert_to_openvino(net, path)
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        core = openvino.Core()
        self.compiled = core.compile_model(with_pixel_input(core.read_model(str(path))), "CPU", config)
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        result = self.compiled(frames.contiguous().numpy())
        return torch.from_numpy(result[0].copy())  # the infer request reuses its output buffer
