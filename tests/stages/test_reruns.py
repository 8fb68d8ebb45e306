"""Reruns on real data: what makes an output stale (every result-changing setting), and what survives a failure."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import STREET, copy_video, require_shared, run_cli

from camerapose_cli.config import load_preset
from camerapose_cli.core.device import CPU, precision_name, resolve_precision
from camerapose_cli.io.resources import default_pose_model
from camerapose_cli.models.checkpoints import default_weights
from camerapose_cli.stages.extract import ExtractStage
from camerapose_cli.stages.lift import LiftStage
from camerapose_cli.stages.refine import RefineStage

pytestmark = pytest.mark.slow


@pytest.fixture
def street_run(tmp_path):
    """A run folder extracted from a copy of the 5-frame street video (the copy can be moved away)."""
    video = copy_video(require_shared(STREET), tmp_path / "videos" / STREET.name)
    out = tmp_path / "run"
    result = run_cli("extract", str(video.parent), "--out", str(out), "--pipeline", "cpu-fast", "--json", "-q")
    assert result.returncode == 0, result.stderr
    return video, out


def done(result) -> int:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["done"]


def test_a_lift_overlay_that_fails_keeps_the_good_table(street_run, tmp_path):
    video, run = street_run
    hidden = tmp_path / "elsewhere.mp4"
    shutil.move(video, hidden)
    failed = run_cli("lift", str(run), "--overlay", "--json", "-q")
    assert failed.returncode == 1 and "source video" in failed.stderr
    table = run / "keypoints3d" / f"{STREET.name}.parquet"
    assert table.is_file()
    stamp = table.stat().st_mtime_ns
    shutil.move(hidden, video)
    again = run_cli("lift", str(run), "--overlay", "--json", "-q")
    assert done(again) == 1 and table.stat().st_mtime_ns == stamp  # only the overlay was drawn
    assert (run / "overlays3d" / f"{STREET.name}.mp4").stat().st_size > 0


def test_every_refine_setting_makes_tables_stale(street_run, tmp_path):
    _, run = street_run
    assert done(run_cli("refine", str(run), "--json", "-q")) == 1
    assert done(run_cli("refine", str(run), "--json", "-q")) == 0
    for key, value in (("window", 32), ("min_track_frames", 100)):
        preset = tmp_path / f"{key}.toml"
        preset.write_text(f"[refine]\n{key} = {value}\n")
        assert done(run_cli("refine", str(run), "--pipeline", str(preset), "--json", "-q")) == 1, key


def test_lift_redoes_tables_when_the_refiner_settings_change(street_run, tmp_path):
    _, run = street_run
    assert done(run_cli("lift", str(run), "--json", "-q")) == 1
    assert done(run_cli("lift", str(run), "--json", "-q")) == 0
    preset = tmp_path / "window.toml"
    preset.write_text("[refine]\nwindow = 32\n")
    assert done(run_cli("lift", str(run), "--pipeline", str(preset), "--json", "-q")) == 1
    assert done(run_cli("lift", str(run), "--no-refine", "--json", "-q")) == 1


def test_fingerprints_cover_every_setting_of_the_sections_a_stage_reads():
    preset = load_preset("default")
    refiner = default_weights("refiner")
    refine = RefineStage(refiner, preset.refine, "default").settings()
    assert set(refine["refine"]) == set(type(preset.refine).model_fields) - {"device"} and refine["refiner_sha256"]
    assert refine["device"] == "cpu"  # the device it resolved to, not the preset's "auto"
    lifter = default_weights("lifter")
    lift = LiftStage(preset.lift, lifter, refiner, preset.refine, preset.overlay, "default").settings()
    assert set(lift["lift"]) == set(type(preset.lift).model_fields) - {"batch_size", "device", "precision"}
    assert lift["refinement"] == refine and lift["lifter_sha256"] and lift["device"] == "cpu"
    assert lift["precision"] == precision_name(resolve_precision("auto", CPU))  # resolved, not the preset's "auto"


def test_extract_fingerprint_holds_device_and_half():
    preset = load_preset("default")
    settings = ExtractStage(
        preset.extract.with_values(device="cpu"), preset.overlay, default_pose_model(), "x"
    ).settings()
    fields = set(type(preset.extract).model_fields) - type(preset.extract).NOT_IN_FINGERPRINT
    assert fields <= set(settings["extract"]) and {"device", "half"} <= fields
    assert settings["extract"]["device"] == "cpu" and settings["extract"]["half"] is False  # fp16 is CUDA-only
