"""The detector's engines: OpenVINO against PyTorch on a real video, the offline conversion and its cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import COURTYARD, require_shared, run_cli

import camerapose_cli.detect.engines as engines
from camerapose_cli.config import load_preset
from camerapose_cli.detect.pose2d import PoseDetector
from camerapose_cli.errors import UsageError
from camerapose_cli.io.resources import default_pose_model
from camerapose_cli.io.schema import read_keypoints2d
from camerapose_cli.io.video import iter_frame_batches, probe

pytest.importorskip("openvino")


def test_auto_picks_openvino_on_the_cpu_and_torch_on_cuda(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert engines.resolve_backend("auto", cpu) == "openvino"
    assert engines.resolve_backend("auto", cuda) == "torch"
    assert engines.resolve_backend("torch", cpu) == "torch"
    with pytest.raises(UsageError, match="CPU only"):
        engines.resolve_backend("openvino", cuda)
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    assert engines.resolve_backend("auto", cpu) == "torch"
    with pytest.raises(UsageError, match="pip install openvino"):
        engines.resolve_backend("openvino", cpu)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder of this module's own, so the first detector below converts the model."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("cache")
        patch.setenv("CAMERAPOSE_CACHE", str(folder))
        yield folder


def courtyard_detections(backend: str) -> tuple[PoseDetector, list]:
    video = require_shared(COURTYARD)
    config = load_preset("default").extract.with_values(device="cpu", backend=backend)
    detector = PoseDetector.from_config(default_pose_model(), config)
    info = probe(video)
    geometry = detector.geometry(info.width, info.height)
    found = []
    for batch in iter_frame_batches(info, config.batch_size, geometry.resized, "pyav"):
        found.extend(detector.detect(batch.frames, geometry))
    return detector, found


def test_openvino_finds_the_same_people_as_torch(cache):
    torch_detector, reference = courtyard_detections("torch")
    detector, found = courtyard_detections("openvino")
    assert torch_detector.engine.name == "torch" and detector.engine.name == "openvino"
    assert detector.precision in ("bf16", "f32")
    model_files = list(cache.glob("openvino/*/model.xml"))
    assert len(model_files) == 1 and not list(cache.glob("openvino/.convert-*"))  # converted once, nothing partial
    assert [len(f) for f in found] == [len(f) for f in reference]
    gaps, score_gaps = [], []
    for ours, theirs in zip(found, reference):
        gaps.append(np.linalg.norm(ours.keypoints[..., :2] - theirs.keypoints[..., :2], axis=-1))
        score_gaps.append(np.abs(ours.scores - theirs.scores))
    gaps = np.concatenate(gaps, axis=None)
    person_height = np.ptp(np.concatenate([f.keypoints[..., 1] for f in reference], axis=None))
    # bf16 moves keypoints by under a pixel at the median (docs/performance.md); f32 by nothing.
    assert np.median(gaps) < 1.5 and np.percentile(gaps, 90) < 0.05 * person_height
    assert np.concatenate(score_gaps).max() < 0.05


def test_the_converted_model_is_reused(cache, monkeypatch):
    def no_conversion(*_args, **_kwargs):
        raise AssertionError("converted again")

    courtyard_detections("openvino")  # converts, unless the test above already did
    monkeypatch.setattr(engines, "convert_to_openvino", no_conversion)
    detector, found = courtyard_detections("openvino")
    assert detector.engine.name == "openvino" and sum(len(f) for f in found) > 0


def test_extract_records_the_engine_and_refuses_an_unknown_one(tmp_path, cache):
    video = require_shared(COURTYARD)
    home = tmp_path / "home"
    home.mkdir()
    env = {"CAMERAPOSE_CACHE": str(cache), "HOME": str(home)}
    out = tmp_path / "run"
    result = run_cli("extract", str(video), "--out", str(out), "--backend", "openvino", "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    assert not (home / "intel").exists()  # OpenVINO's usage telemetry stayed off (it keeps a client id there)
    table = out / "keypoints2d" / f"{video.name}.parquet"
    assert len(read_keypoints2d(table).frame) > 0
    params = json.loads(read_keypoints2d(table).metadata["params"])
    assert params["backend"] == "openvino" and params["precision"] in ("bf16", "f32")
    # A rerun with the other engine is not current: its keypoints differ.
    result = run_cli("extract", str(video), "--out", str(out), "--backend", "torch", "--json", env=env)
    assert result.returncode == 0 and '"done": 1' in result.stdout
    result = run_cli("extract", str(video), "--out", str(out), "--backend", "onnx", env=env)
    assert result.returncode == 2 and "onnx" in result.stderr and "Traceback" not in result.stderr
