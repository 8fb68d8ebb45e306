"""INT8 YOLO11n-pose (NNCF post-training quantization) against the OpenVINO engine `extract` uses, on this CPU.

Issue 12 allows INT8 only if it keeps the keypoints: this bench quantizes the cached OpenVINO model with a local
calibration set (frames of the shared videos and Ultralytics' two sample photos, letterboxed as `extract` does),
then prints, side by side in one run, for the default engine and each INT8 variant:
- the network's time per frame on a batch of courtyard frames (the letterboxed uint8 input of the engine);
- the median keypoint distance to the default engine's on the courtyard clip (display pixels);
- the median keypoint error against the shared COCO annotations and PCK@0.05 of the person's box diagonal.

Variants: everything quantized but the sigmoids, and everything but the pose head (what Ultralytics' own INT8
export leaves in floating point). Needs `pip install nncf`; not a dependency of the tool (docs/experiments.md).

    python bench/int8_detector.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from camerapose_cli.detect.engines import import_openvino, openvino_model_path, with_pixel_input
from camerapose_cli.detect.pose2d import PoseDetector, letterbox_frames
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.io.resources import default_pose_model, sample_images
from camerapose_cli.io.video import resize_frame

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CALIBRATION_VIDEOS = ("videos/courtyard_dribble_40f.mp4", "videos/street_people_5f.mp4", "videos/soccer_players_5f.mp4")
CALIBRATION_EVERY = 4  # every 4th frame of each calibration video
TIMING_VIDEO = "videos/courtyard_dribble_40f.mp4"
PCK_FRACTION = 0.05  # of the annotated person's box diagonal
HEAD_SCOPE = "__module.net.model.23"  # the pose head's node names in the converted model


def video_frames(path: Path, every: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i % every == 0]


def letterboxed(detector: PoseDetector, image: np.ndarray) -> tuple[np.ndarray, object]:
    """One RGB image as the engine's uint8 input (H, W, 3), resized and padded as `extract` does."""
    geometry = detector.geometry(image.shape[1], image.shape[0])
    resized = torch.from_numpy(resize_frame(image, *geometry.resized))
    return letterbox_frames(resized[None], geometry)[0].numpy(), geometry


class CompiledEngine:
    """An already compiled OpenVINO model in the engine protocol of camerapose_cli.detect.engines."""

    name = "openvino"

    def __init__(self, compiled, precision: str) -> None:
        self.compiled, self.precision = compiled, precision

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.compiled(frames.contiguous().numpy())[0].copy())


def quantized_models(detector: PoseDetector, calibration: list[np.ndarray]) -> dict[str, object]:
    import nncf

    nncf.set_log_level(logging.ERROR)
    openvino = import_openvino()
    core = openvino.Core()
    path = openvino_model_path(detector.model_path)
    samples = [np.ascontiguousarray(letterboxed(detector, im)[0]) for im in calibration]
    samples += [s[:, ::-1].copy() for s in samples]  # mirrored copies
    dataset = nncf.Dataset(samples, lambda x: (x.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
    variants = {}
    names = [op.get_friendly_name() for op in core.read_model(str(path)).get_ordered_ops()]
    scopes = {
        "int8, all but sigmoids": nncf.IgnoredScope(types=["Sigmoid"]),
        "int8, head in fp32": nncf.IgnoredScope(names=[n for n in names if n.startswith(HEAD_SCOPE)], validate=False),
    }
    for label, scope in scopes.items():
        model = nncf.quantize(
            core.read_model(str(path)),
            dataset,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(samples),
            ignored_scope=scope,
        )
        variants[label] = core.compile_model(with_pixel_input(model), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    print(f"calibration: {len(samples)} letterboxed frames (shared videos, Ultralytics' photos, mirrored)")
    return variants


def first_keypoints(detector: PoseDetector, images: list[np.ndarray]) -> list[np.ndarray]:
    """Every detected person's keypoints (N, 17, 3) in each image, display pixels, best score first."""
    out = []
    for image in images:
        geometry = detector.geometry(image.shape[1], image.shape[0])
        found = detector.detect(resize_frame(image, *geometry.resized)[None], geometry)
        out.append(found[0].keypoints)
    return out


def coco_errors(detector: PoseDetector, coco, images: dict[Path, np.ndarray]) -> tuple[float, float]:
    """Median keypoint error (px) over labelled keypoints of annotated people matched to their nearest detection,
    and PCK at PCK_FRACTION of the person's keypoint box diagonal."""
    found = dict(zip(images, first_keypoints(detector, list(images.values()))))
    errors, hits = [], []
    for kp, image in zip(coco.keypoints, coco.image):
        labelled = kp[:, 2] > 0
        candidates = found[image]
        if not len(candidates):
            continue
        distance = np.linalg.norm(candidates[:, labelled, :2] - kp[None, labelled, :2], axis=-1)
        best = distance[int(np.argmin(np.median(distance, axis=1)))]
        diagonal = np.linalg.norm(np.ptp(kp[labelled, :2], axis=0))
        errors.extend(best)
        hits.extend(best < PCK_FRACTION * diagonal)
    return float(np.median(errors)), float(np.mean(hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the courtyard frames")
    args = parser.parse_args()
    if importlib.util.find_spec("nncf") is None:
        sys.exit("bench/int8_detector.py needs NNCF: pip install nncf")
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    detector = PoseDetector(default_pose_model(), imgsz=640, backend="openvino")
    calibration = [f for v in CALIBRATION_VIDEOS for f in video_frames(SHARED / v, CALIBRATION_EVERY)]
    calibration += [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sample_images()]
    engines = {f"default ({detector.precision})": detector.engine}
    engines.update({k: CompiledEngine(v, "i8") for k, v in quantized_models(detector, calibration).items()})

    frames = video_frames(SHARED / TIMING_VIDEO)
    batch = torch.from_numpy(np.stack([letterboxed(detector, f)[0] for f in frames]))
    coco = read_coco_keypoints(SHARED / "coco" / "test_coco.json", min_keypoints=8)
    coco_images = {p: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in dict.fromkeys(coco.image)}
    step = 8
    timings: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        engine(batch[:step])  # warm up
    for _ in range(args.repeats):  # alternate engines, so drift of the machine hits each alike
        for name, engine in engines.items():
            started = time.perf_counter()
            for s in range(0, len(batch), step):
                engine(batch[s : s + step])
            timings[name].append((time.perf_counter() - started) / len(batch) * 1000)

    reference = None
    base = statistics.median(next(iter(timings.values())))
    print(f"\n{'engine':26s} {'ms/frame':>9s} {'speed-up':>9s} {'vs default':>11s} {'COCO error':>11s} {'PCK':>6s}")
    for name, engine in engines.items():
        detector.engine = engine
        kps = first_keypoints(detector, frames)
        if reference is None:
            reference = kps
        gaps = [
            np.median(np.linalg.norm(a[0, :, :2] - b[0, :, :2], axis=-1))
            for a, b in zip(reference, kps)
            if len(a) and len(b)
        ]
        error, pck = coco_errors(detector, coco, coco_images)
        ms = statistics.median(timings[name])
        print(
            f"{name:26s} {ms:9.2f} {base / ms:8.2f}x {np.median(gaps):8.2f} px {error:8.2f} px {pck:6.1%}",
        )
    print(
        f"\n{len(frames)} courtyard frames ({frames[0].shape[1]}x{frames[0].shape[0]}) in batches of {step}, "
        f"median of {args.repeats}; COCO: {len(coco.keypoints)} annotated people"
    )


if __name__ == "__main__":
    main()
