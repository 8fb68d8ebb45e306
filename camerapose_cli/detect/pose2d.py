"""Batched person detection and COCO-17 keypoints with an Ultralytics YOLO pose checkpoint.

We run the network on whole batches ourselves rather than through `YOLO.predict`, so that decoding
can resize straight to the network's input size and batches can overlap with decoding. Letterbox
geometry, NMS and thresholds follow Ultralytics' predictor, so keypoints agree with `model.predict`.
The network runs in PyTorch or OpenVINO (`detect.engines`); everything around it is the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from camerapose_cli.config import Backend, ExtractSection
from camerapose_cli.core.device import resolve_device
from camerapose_cli.core.skeleton import NUM_COCO_JOINTS
from camerapose_cli.detect.engines import OpenVinoEngine, PoseEngine, TorchEngine, resolve_backend
from camerapose_cli.errors import CheckpointError

# Ultralytics must never reach the network at run time (settings sync, hub checks, auto-installs).
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")

LETTERBOX_FILL = 114  # Ultralytics' padding grey


@dataclass(frozen=True)
class LetterboxGeometry:
    """How a display frame maps onto the network input: resize to `resized`, then pad by `pad` to `padded`."""

    source: tuple[int, int]  # (width, height) of the displayed frame
    resized: tuple[int, int]
    padded: tuple[int, int]
    pad: tuple[int, int]  # (left, top)

    def to_source(self, xy: np.ndarray) -> np.ndarray:
        """Network-input pixel coordinates (..., 2) to display-frame pixels."""
        scale = np.array([self.source[0] / self.resized[0], self.source[1] / self.resized[1]], dtype=np.float32)
        return (xy - np.asarray(self.pad, np.float32)) * scale


def letterbox_geometry(width: int, height: int, imgsz: int, stride: int = 32) -> LetterboxGeometry:
    """Ultralytics' rectangular letterbox (`LetterBox(auto=True)`): keep aspect, pad to a multiple of `stride`."""
    ratio = min(imgsz / height, imgsz / width)
    new_w, new_h = int(round(width * ratio)), int(round(height * ratio))
    pad_w, pad_h = (imgsz - new_w) % stride, (imgsz - new_h) % stride
    left, top = int(round(pad_w / 2 - 0.1)), int(round(pad_h / 2 - 0.1))
    return LetterboxGeometry((width, height), (new_w, new_h), (new_w + pad_w, new_h + pad_h), (left, top))


def letterbox_frames(frames: torch.Tensor, geometry: LetterboxGeometry) -> torch.Tensor:
    """Frames (B, H, W, 3) already resized to `geometry.resized`, padded to the network's input with Ultralytics'
    grey."""
    left, top = geometry.pad
    right = geometry.padded[0] - geometry.resized[0] - left
    bottom = geometry.padded[1] - geometry.resized[1] - top
    return torch.nn.functional.pad(frames, (0, 0, left, right, top, bottom), value=LETTERBOX_FILL)


@dataclass(frozen=True)
class FrameDetections:
    """People found in one frame, in display-frame pixels."""

    boxes: np.ndarray  # float32 (N, 4) x1 y1 x2 y2
    scores: np.ndarray  # float32 (N,)
    keypoints: np.ndarray  # float32 (N, 17, 3) x, y, confidence

    def __len__(self) -> int:
        return len(self.scores)


class PoseDetector:
    """A YOLO pose network ready for batched inference on one device."""

    def __init__(
        self,
        model_path: Path,
        *,
        imgsz: int,
        device: str = "auto",
        backend: Backend = "auto",
        half: bool = True,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 100,
        threads: int = 0,
    ) -> None:
        from ultralytics import YOLO  # lazy, as all of Ultralytics here: lift and train never load it

        try:
            yolo = YOLO(str(model_path), task="pose")
        except Exception as exc:
            raise CheckpointError(f"{model_path}: cannot load the pose checkpoint ({exc})") from None
        net = yolo.model
        kpt_shape = list(getattr(net, "kpt_shape", []) or [])
        if not isinstance(net, torch.nn.Module) or kpt_shape != [NUM_COCO_JOINTS, 3]:
            raise CheckpointError(f"{model_path}: not a COCO-17 pose checkpoint (kpt_shape={kpt_shape})")
        self.device = resolve_device(device)
        self.half = bool(half) and self.device.type == "cuda"
        if self.device.type == "cpu":
            # 0 = every core. Set explicitly: Ultralytics' own device selection pins torch to cores - 1.
            torch.set_num_threads(threads if threads > 0 else os.cpu_count() or 1)
        net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
        net = net.to(self.device).eval()
        net = net.half() if self.half else net.float()
        self.stride = max(int(net.stride.max()), 32) if hasattr(net, "stride") else 32
        self.engine: PoseEngine
        if resolve_backend(backend, self.device) == "openvino":
            self.engine = OpenVinoEngine(net, Path(model_path), threads)
        else:
            self.engine = TorchEngine(net, self.half)
        self.imgsz = int(np.ceil(imgsz / self.stride) * self.stride)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.end2end = bool(getattr(net, "end2end", False))
        self.model_path = Path(model_path)
        self._upload_stream: torch.cuda.Stream | None = None

    @classmethod
    def from_config(cls, model_path: Path, config: ExtractSection) -> PoseDetector:
        """A detector with the [extract] section's input size, device, fp16, thresholds and CPU threads."""
        return cls(
            model_path,
            imgsz=config.imgsz,
            device=config.device,
            backend=config.backend,
            half=config.half,
            conf=config.conf,
            iou=config.iou,
            max_det=config.max_det,
            threads=config.threads,
        )

    @property
    def precision(self) -> str:
        return self.engine.precision

    def geometry(self, width: int, height: int) -> LetterboxGeometry:
        return letterbox_geometry(width, height, self.imgsz, self.stride)

    def upload(self, frames: np.ndarray) -> torch.Tensor:
        """RGB frames (B, H, W, 3) uint8 as a tensor on the detector's device, ready for `detect`.

        On CUDA the copy goes through pinned memory on a stream of its own and is complete when this returns, so
        a decoding thread can call it while the GPU works on the previous batch; on the CPU it shares the memory.
        """
        tensor = torch.from_numpy(frames)
        if self.device.type != "cuda":
            return tensor
        if self._upload_stream is None:
            self._upload_stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(self._upload_stream):
            on_device = tensor.pin_memory().to(self.device, non_blocking=True)
        self._upload_stream.synchronize()
        return on_device

    @torch.inference_mode()
    def detect(self, frames: np.ndarray | torch.Tensor, geometry: LetterboxGeometry) -> list[FrameDetections]:
        """Detect people in RGB frames (B, H, W, 3) already resized to `geometry.resized` (numpy, or `upload`'s)."""
        from ultralytics.utils import nms

        expected = (geometry.resized[1], geometry.resized[0])
        if tuple(frames.shape[1:3]) != expected:
            raise ValueError(f"frames are {tuple(frames.shape[1:3])}, expected {expected} (height, width)")
        if isinstance(frames, np.ndarray):
            frames = self.upload(frames)
        elif frames.device.type == "cuda":  # made on the upload stream: keep its memory until this stream is done
            frames.record_stream(torch.cuda.current_stream(frames.device))
        preds = self.engine(letterbox_frames(frames.to(self.device), geometry))
        kept = nms.non_max_suppression(preds, self.conf, self.iou, max_det=self.max_det, nc=1, end2end=self.end2end)
        # One copy back for the whole batch: on CUDA each copy waits for the GPU.
        rows = torch.cat(kept).float().cpu().numpy()
        ends = np.cumsum([len(p) for p in kept])
        return [self._to_detections(p, geometry) for p in np.split(rows, ends[:-1])]

    @staticmethod
    def _to_detections(pred: np.ndarray, geometry: LetterboxGeometry) -> FrameDetections:
        width, height = geometry.source
        boxes = geometry.to_source(pred[:, :4].reshape(-1, 2, 2)).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        kpts = pred[:, 6:].reshape(-1, NUM_COCO_JOINTS, 3).copy()
        kpts[..., :2] = geometry.to_source(kpts[..., :2])
        kpts[..., 0] = kpts[..., 0].clip(0, width)
        kpts[..., 1] = kpts[..., 1].clip(0, height)
        return FrameDetections(boxes.astype(np.float32), pred[:, 4].astype(np.float32), kpts.astype(np.float32))
