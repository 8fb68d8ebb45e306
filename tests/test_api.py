"""The Python API: the README's example runs as written, and the in-memory functions work on one clip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import STREET, VIDEOS, require_shared

import camerapose_cli as cp
from camerapose_cli.io.video import iter_frame_batches, probe

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "README.md shows no Python example"
    return blocks[0]


def test_the_readme_python_example_runs(tmp_path, capsys):
    code = readme_python_example()
    assert len(code.strip().splitlines()) <= 6
    code = code.replace('"videos/"', repr(str(require_shared(VIDEOS)))).replace(
        '"runs/demo"', repr(str(tmp_path / "demo"))
    )
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[0] == "3" and int(printed[1]) > 40  # three videos done, dozens of person-frames lifted
    assert (tmp_path / "demo" / "keypoints3d").is_dir()


def test_in_memory_stages_on_one_clip():
    info = probe(require_shared(STREET))
    frames = np.concatenate([b.frames for b in iter_frame_batches(info, 8)])
    table = cp.extract_frames(frames, fps=info.fps, preset="cpu-fast")
    assert len(table) > 5 and set(table.frame) <= set(range(len(frames)))
    track = table.track_id[0]
    rows = np.flatnonzero(table.track_id == track)
    refined = cp.refine_keypoints(table.keypoints[rows], table.frame[rows])
    assert refined.shape == (len(rows), 17, 3)
    cut = table.keypoints[rows].copy()
    cut[:, 15:, 1], cut[:, 15:, 2] = info.height - 1, 0.1  # the ankles on the bottom border, as a cut person's
    kept = cp.refine_keypoints(cut, table.frame[rows], width=info.width, height=info.height)
    np.testing.assert_array_equal(kept[:, 15:], cut[:, 15:])
    assert not np.array_equal(cp.refine_keypoints(cut, table.frame[rows])[:, 15:], cut[:, 15:])
    lifted = cp.lift_arrays(refined, info.width, info.height)
    assert lifted.pose.shape == (len(rows), 17, 3) and np.isfinite(lifted.root_cam).all()
    assert (lifted.root_cam[:, 2] > 0).all()  # in front of the camera
    with pytest.raises(AttributeError):
        cp.no_such_function  # noqa: B018
