"""Small pure pieces: letterbox geometry, presets, prefetching, atomic writes, the table schema."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from camerapose_cli.config import available_presets, load_preset
from camerapose_cli.detect.pose2d import letterbox_geometry
from camerapose_cli.errors import ConfigError, SchemaError
from camerapose_cli.io.atomic import atomic_output, partial_path, remove_stale_partials
from camerapose_cli.io.prefetch import prefetch
from camerapose_cli.io.schema import KEYPOINTS2D_SCHEMA, Keypoints2DWriter, KeypointTable, read_keypoints2d


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080), (960, 540), (333, 517), (640, 640)])
@pytest.mark.parametrize("imgsz", [640, 480])
def test_letterbox_geometry_matches_ultralytics(size, imgsz):
    from ultralytics.data.augment import LetterBox

    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    theirs = LetterBox(new_shape=(imgsz, imgsz), auto=True, stride=32)(image=image)
    geometry = letterbox_geometry(width, height, imgsz)
    assert theirs.shape[:2] == (geometry.padded[1], geometry.padded[0])
    # The padding band Ultralytics fills with grey sits exactly where ours says.
    left, top = geometry.pad
    assert (theirs[top : top + geometry.resized[1], left : left + geometry.resized[0]] == 0).all()


def test_letterbox_maps_network_pixels_back_to_the_frame():
    geometry = letterbox_geometry(1080, 1920, 640)
    corners = np.array(
        [
            [geometry.pad[0], geometry.pad[1]],
            [geometry.pad[0] + geometry.resized[0], geometry.pad[1] + geometry.resized[1]],
        ],
        np.float32,
    )
    np.testing.assert_allclose(geometry.to_source(corners), [[0, 0], [1080, 1920]], atol=1e-3)


def test_shipped_presets_load_and_override():
    assert {"default", "cpu-fast"} <= set(available_presets())
    default = load_preset("default").extract
    fast = load_preset("cpu-fast").extract.with_values(batch_size=2)
    assert fast.imgsz < default.imgsz and fast.batch_size == 2
    with pytest.raises(ConfigError, match="no_such_key"):
        load_preset("default").extract.with_values(no_such_key=1)
    with pytest.raises(ConfigError, match="batch_size"):
        load_preset("default").extract.with_values(batch_size=0)
    with pytest.raises(ConfigError, match="no preset"):
        load_preset("no-such-preset")


def test_preset_from_a_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[extract]\nimgsz = 320\n')
    preset = load_preset(str(path))
    assert preset.name == "mine" and preset.extract.imgsz == 320
    assert preset.lift == load_preset("default").lift  # what the file leaves out comes from the defaults


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("decode broke")

    got = []
    with pytest.raises(ValueError, match="decode broke"):
        for item in prefetch(failing(), depth=2):
            got.append(item)
    assert got == [1]


def test_prefetch_overlaps_producer_and_consumer():
    def slow_items():
        for i in range(4):
            time.sleep(0.1)
            yield i

    started = time.perf_counter()
    for _ in prefetch(slow_items(), depth=2):
        time.sleep(0.1)
    assert time.perf_counter() - started < 0.75  # serial would take 0.8 s


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    for item in prefetch(iter(range(1000)), depth=2):
        if item == 3:
            break
    time.sleep(0.3)
    assert threading.active_count() == before


def test_atomic_output_renames_on_success_and_cleans_on_failure(tmp_path):
    final = tmp_path / "sub" / "table.parquet"
    with atomic_output(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done"
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "other.parquet") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "table.parquet"]


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".a.parquet.partial-999999999.parquet"
    dead.write_text("x")
    mine = partial_path(tmp_path / "b.parquet")
    mine.write_text("x")  # our own pid: still being written
    assert remove_stale_partials(tmp_path) == 1
    assert not dead.exists()
    os.unlink(mine)


def make_table(n: int, video: str = "v.mp4") -> KeypointTable:
    rng = np.random.default_rng(0)
    return KeypointTable(
        video=np.full(n, video, dtype=object),
        frame=np.arange(n, dtype=np.int64),
        time_s=np.arange(n) / 30.0,
        track_id=np.ones(n, np.int64),
        bbox=rng.random((n, 4), np.float32),
        score=rng.random(n, np.float32),
        keypoints=rng.random((n, 17, 3), np.float32),
        width=np.full(n, 640, np.int32),
        height=np.full(n, 480, np.int32),
        metadata={},
    )


def test_writer_round_trips_in_row_groups(tmp_path):
    path = tmp_path / "t.parquet"
    writer = Keypoints2DWriter(path, row_group_rows=10)
    table = make_table(35)
    for start in range(0, 35, 5):
        writer.append(
            KeypointTable(
                **{k: (v[start : start + 5] if isinstance(v, np.ndarray) else v) for k, v in table.__dict__.items()}
            )
        )
    writer.close({"frames": 35, "fps": 30.0})
    assert pq.ParquetFile(path).num_row_groups >= 3
    back = read_keypoints2d(path)
    np.testing.assert_array_equal(back.keypoints, table.keypoints)
    np.testing.assert_array_equal(back.frame, table.frame)
    assert back.metadata["frames"] == "35"
    assert pq.read_schema(path).equals(KEYPOINTS2D_SCHEMA, check_metadata=False)


def test_reader_rejects_tables_that_break_the_contract(tmp_path):
    good = make_table(3).to_arrow()
    missing = tmp_path / "missing.parquet"
    pq.write_table(good.drop_columns(["kp_conf"]), missing)
    with pytest.raises(SchemaError, match="missing column 'kp_conf'"):
        read_keypoints2d(missing)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(good.set_column(1, "frame", pa.array(["0", "1", "2"])), wrong)
    with pytest.raises(SchemaError, match="'frame' is string"):
        read_keypoints2d(wrong)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("nope")
    with pytest.raises(SchemaError, match="not a readable Parquet file"):
        read_keypoints2d(garbage)
