"""Input discovery, probing and decoding on the real shared videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import COURTYARD, STREET, copy_video, ffmpeg, require_shared

from camerapose_cli.errors import InputError
from camerapose_cli.io.video import discover_inputs, iter_frame_batches, probe


def pyav_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_discover_is_recursive_case_insensitive_and_sorted(tmp_path):
    for name in ["b/clip.MP4", "a.mov", "c/d/e.WebM", "photo.JPG", "still.png", "notes.txt", "x.mp4.bak"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_inputs(tmp_path)]
    assert found == ["a.mov", "b/clip.MP4", "c/d/e.WebM", "photo.JPG", "still.png"]


def test_decoded_frames_and_timestamps_match_pyav():
    require_shared(COURTYARD)
    info = probe(COURTYARD)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 0)
    reference = pyav_frames(COURTYARD)
    batches = list(iter_frame_batches(info, batch_size=7))
    indices = np.concatenate([b.indices for b in batches])
    times = np.concatenate([b.times for b in batches])
    assert len(indices) == len(reference) == 40
    np.testing.assert_array_equal(indices, np.arange(40))
    np.testing.assert_allclose(times, [f.time for f in reference], atol=1e-4)
    assert max(len(b.indices) for b in batches) == 7  # memory is bounded by the batch


def test_resize_at_decode_keeps_display_orientation():
    require_shared(COURTYARD)
    info = probe(COURTYARD)
    batch = next(iter_frame_batches(info, 4, size=(360, 640)))
    assert batch.frames.shape == (4, 640, 360, 3)
    assert batch.frames.dtype == np.uint8


def test_pyav_frames_are_the_frames_ultralytics_predicts_on():
    """Ultralytics reads video with OpenCV and resizes with cv2.INTER_LINEAR; the PyAV path must give the same
    pixels, so that the detector's keypoints agree with its predictor's."""
    import cv2

    require_shared(COURTYARD)
    batch = next(iter_frame_batches(probe(COURTYARD), 6, size=(360, 640), decoder="pyav"))
    capture = cv2.VideoCapture(str(COURTYARD))
    for frame in batch.frames:
        ok, bgr = capture.read()
        assert ok
        expected = cv2.resize(bgr, (360, 640), interpolation=cv2.INTER_LINEAR)[..., ::-1]
        assert np.abs(frame.astype(np.int16) - expected).mean() < 0.5


@pytest.mark.parametrize("degrees", [90, 180, 270])
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_rotation_metadata_is_honoured(tmp_path, monkeypatch, degrees, decoder):
    """A phone-style rotation flag: our frames equal what ffmpeg's own autorotation shows, with either decoder."""
    import camerapose_cli.io.video as video

    if decoder == "pyav":
        monkeypatch.setattr(video, "_open_decord", _refuse)
    require_shared(STREET)
    rotated = tmp_path / f"rot{degrees}.mp4"
    ffmpeg("-display_rotation:v", str(degrees), "-i", str(STREET), "-c", "copy", str(rotated))
    upright = tmp_path / "upright.mp4"
    ffmpeg("-i", str(rotated), "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(upright))
    info = probe(rotated)
    assert info.rotation == degrees
    expected_size = (540, 960) if degrees in (90, 270) else (960, 540)
    assert (info.width, info.height) == expected_size
    ours = next(iter_frame_batches(info, 1)).frames[0].astype(np.int16)
    half = next(iter_frame_batches(info, 1, size=(info.width // 2, info.height // 2))).frames[0]
    assert half.shape == (info.height // 2, info.width // 2, 3)
    theirs = pyav_frames(upright)[0].to_ndarray(format="rgb24").astype(np.int16)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).mean() < 3.0  # chroma resampling only; a wrong turn is ~50


def test_still_image_is_one_frame(tmp_path):
    from camerapose_cli.io.resources import sample_images

    image = sample_images()[0]
    info = probe(image)
    assert info.is_image and info.frame_count == 1
    (batch,) = list(iter_frame_batches(info, 8, size=(info.width // 2, info.height // 2)))
    assert batch.frames.shape == (1, info.height // 2, info.width // 2, 3)


def _refuse(*args, **kwargs):
    raise RuntimeError("decord unavailable")


def test_pyav_fallback_decodes_what_decord_cannot(tmp_path, monkeypatch):
    require_shared(STREET)
    import camerapose_cli.io.video as video

    monkeypatch.setattr(video, "_open_decord", _refuse)
    info = probe(copy_video(STREET, tmp_path / "s.mp4"))
    frames = np.concatenate([b.frames for b in iter_frame_batches(info, 2)])
    assert frames.shape == (5, 540, 960, 3)


def test_probe_errors_are_one_line(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n")
    for name, fragment in [("empty.mp4", "empty"), ("text.mp4", "not a readable video container")]:
        with pytest.raises(InputError, match=fragment) as err:
            probe(tmp_path / name)
        assert "\n" not in str(err.value)


def decode_all(info, threads: int):
    batches = list(iter_frame_batches(info, 8, size=(360, 640), decoder="pyav", threads=threads))
    return (
        np.concatenate([b.indices for b in batches]),
        np.concatenate([b.times for b in batches]),
        np.concatenate([b.frames for b in batches]),
    )


def test_frame_threads_give_the_single_threaded_frames():
    require_shared(COURTYARD)
    info = probe(COURTYARD)
    single, threaded = decode_all(info, threads=1), decode_all(info, threads=0)
    assert len(single[0]) == 40
    for a, b in zip(single, threaded):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 0, 2])
def test_a_truncated_video_fails_at_the_same_frame_with_or_without_frame_threads(tmp_path, threads):
    """Frame threading drops a cut-off last packet without an error; the tail check must still report it."""
    require_shared(COURTYARD)
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(COURTYARD), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # index intact: 40 frames announced, about half present
    info = probe(truncated)
    assert info.frame_count == 40
    decoded = 0
    with pytest.raises(InputError, match=r"decoding failed at frame (\d+)") as err:
        for batch in iter_frame_batches(info, 4, size=(360, 640), decoder="pyav", threads=threads):
            decoded += len(batch.indices)
    assert 0 < decoded < 40
    assert f"at frame {decoded} " in str(err.value)
