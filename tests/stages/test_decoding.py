"""Decoding that does not give up on a playable video: when decord fails part-way, the input is decoded again
with PyAV, and the table equals a PyAV-only run."""

from __future__ import annotations

import json

import decord
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import COURTYARD, SHARED_DATA, require_shared, run_cli

import camerapose_cli
import camerapose_cli.io.video as video
from camerapose_cli.io.schema import read_keypoints2d, read_metadata

pytestmark = pytest.mark.slow
VP9 = SHARED_DATA / "robustness" / "treadmill_vp9_100f.mp4"


def test_a_vp9_video_that_decord_cannot_finish_is_decoded_whole(tmp_path):
    out = tmp_path / "run"
    result = run_cli("extract", str(require_shared(VP9)), "--out", str(out), "--pipeline", "cpu-fast", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["frames"] == 100
    assert "decoding it again with PyAV" in result.stderr and "error" not in result.stderr
    table = read_keypoints2d(out / "keypoints2d" / f"{VP9.name}.parquet")
    assert table.metadata["decoder"] == "pyav" and table.metadata["frames"] == "100"
    assert len(np.unique(table.frame)) >= 90  # the person is found in most frames
    assert np.allclose(np.unique(table.time_s)[:3], [0, 1 / 60, 2 / 60], atol=1e-3)


class FailingReader:
    """A decord reader that fails like decord does on the VP9 file, from frame `fail_at` on."""

    def __init__(self, reader, fail_at: int) -> None:
        self.reader, self.fail_at = reader, fail_at

    def __len__(self) -> int:
        return len(self.reader)

    def get_batch(self, indices):
        if max(indices) >= self.fail_at:
            raise decord.DECORDError("[12:00:00] threaded_decoder.cc:292: Error sending packet.")
        return self.reader.get_batch(indices)

    def get_frame_timestamp(self, indices):
        return self.reader.get_frame_timestamp(indices)


def columns(path):
    table = pq.read_table(path)
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_a_decord_failure_part_way_gives_the_table_of_a_pyav_only_run(tmp_path, monkeypatch):
    require_shared(COURTYARD)
    open_decord = video._open_decord
    monkeypatch.setattr(video, "_open_decord", lambda info, size: FailingReader(open_decord(info, size), 20))
    switched = camerapose_cli.extract(COURTYARD, tmp_path / "switched", preset="cpu-fast")

    def refuse(info, size):
        raise RuntimeError("decord unavailable")

    monkeypatch.setattr(video, "_open_decord", refuse)
    pyav_only = camerapose_cli.extract(COURTYARD, tmp_path / "pyav", preset="cpu-fast")
    assert switched.count("done") == pyav_only.count("done") == 1
    name = f"keypoints2d/{COURTYARD.name}.parquet"
    a, b = tmp_path / "switched" / name, tmp_path / "pyav" / name
    assert read_metadata(a)["decoder"] == read_metadata(b)["decoder"] == "pyav"
    assert read_metadata(a)["frames"] == "40"
    assert columns(a) == columns(b)
