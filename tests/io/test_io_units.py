"""Small pure pieces of io: prefetching, atomic writes, the table schema."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from camerapose_cli.errors import SchemaError
from camerapose_cli.io.atomic import (
    PARTIAL_MARK,
    atomic_output,
    partial_path,
    partial_writer,
    remove_stale_partials,
    split_writer_tag,
)
from camerapose_cli.io.prefetch import prefetch
from camerapose_cli.io.resources import file_sha256
from camerapose_cli.io.schema import (
    KEYPOINTS2D_SCHEMA,
    Keypoints2DWriter,
    KeypointTable,
    find_keypoints2d_tables,
    read_keypoints2d,
)


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
    """The consumer holds the first item until the producer has started on the next: only concurrency gets there."""
    next_started = threading.Event()

    def items():
        yield 0
        next_started.set()
        yield 1

    seen = []
    for item in prefetch(items(), depth=2):
        if item == 0:
            assert next_started.wait(timeout=30), "the producer did not run while the consumer worked"
        seen.append(item)
    assert seen == [0, 1]


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


def test_partials_of_other_machines_are_removed_only_when_their_writer_is_known_dead(tmp_path):
    mine = partial_path(tmp_path / "b.parquet")
    this_host, _ = split_writer_tag(partial_writer(mine))
    dead_here = tmp_path / f".a.parquet{PARTIAL_MARK}{this_host}_999999999.parquet"
    elsewhere = tmp_path / f".c.parquet{PARTIAL_MARK}other-node_{os.getpid()}.parquet"
    killed = tmp_path / f".d.parquet{PARTIAL_MARK}other-node_123.parquet"
    for path in (mine, dead_here, elsewhere, killed):
        path.write_text("x")
    assert remove_stale_partials(tmp_path, dead_writers={"other-node_123"}) == 2
    assert mine.exists() and elsewhere.exists() and not dead_here.exists() and not killed.exists()


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


def test_file_hash_follows_a_rewritten_file(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"first")
    first = file_sha256(path)
    path.write_bytes(b"second, longer")
    assert file_sha256(path) != first
    os.utime(path, ns=(1, 1))
    path.write_bytes(b"third!, longer")  # same size as the second
    os.utime(path, ns=(2, 2))
    assert file_sha256(path) == hashlib.sha256(b"third!, longer").hexdigest()


def test_one_rule_finds_the_keypoints2d_tables(tmp_path):
    run = tmp_path / "run"
    for rel in (
        "keypoints2d/a.mp4.parquet",
        "keypoints2d/sub/b.mp4.parquet",
        "keypoints2d_refined/a.mp4.parquet",
        "keypoints3d/a.mp4.parquet",
        "manifest.parquet",
        "keypoints2d/.c.mp4.parquet.partial-1.parquet",
    ):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(b"")
    root, tables = find_keypoints2d_tables(run)
    assert root == run / "keypoints2d"
    assert [t.relative_to(root).as_posix() for t in tables] == ["a.mp4.parquet", "sub/b.mp4.parquet"]
    root, tables = find_keypoints2d_tables(run / "keypoints2d_refined")
    assert [t.name for t in tables] == ["a.mp4.parquet"]
    (run / "keypoints2d_refined" / "manifest_refine.parquet").write_bytes(b"")
    assert [t.name for t in find_keypoints2d_tables(run / "keypoints2d_refined")[1]] == ["a.mp4.parquet"]
