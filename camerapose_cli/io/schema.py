"""The Parquet contracts between stages: Arrow schemas, streaming writers and validating readers.

docs/schema.md documents these tables. Columns may be added; none may be renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from camerapose_cli.core.skeleton import NUM_COCO_JOINTS, NUM_H36M_JOINTS
from camerapose_cli.errors import SchemaError

META_PREFIX = "camerapose."


def _fixed(dtype: pa.DataType, size: int) -> pa.DataType:
    return pa.list_(dtype, size)


KEYPOINTS2D_SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("track_id", pa.int64()),
        ("bbox", _fixed(pa.float32(), 4)),
        ("score", pa.float32()),
        ("kp_x", _fixed(pa.float32(), NUM_COCO_JOINTS)),
        ("kp_y", _fixed(pa.float32(), NUM_COCO_JOINTS)),
        ("kp_conf", _fixed(pa.float32(), NUM_COCO_JOINTS)),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ]
)

# One row per (video, frame, track), written by `lift`.
KEYPOINTS3D_SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("track_id", pa.int64()),
        ("kp3d_x", _fixed(pa.float32(), NUM_H36M_JOINTS)),  # H36M-17, metres, camera frame, pelvis-relative
        ("kp3d_y", _fixed(pa.float32(), NUM_H36M_JOINTS)),
        ("kp3d_z", _fixed(pa.float32(), NUM_H36M_JOINTS)),
        ("root_cam", _fixed(pa.float32(), 3)),  # pelvis in camera coordinates, metres
        ("focal_px", pa.float32()),  # focal length used (assumed from the preset's fov_deg unless known)
        ("principal_px", _fixed(pa.float32(), 2)),
        ("cam_depth_ratio", pa.float32()),  # the camera branch: root depth = ratio * focal / 2D scale
        ("cam_root_xy", _fixed(pa.float32(), 2)),  # the camera branch: root in normalized image coordinates
        ("reproj_err_px", pa.float32()),  # mean distance of the reprojected COCO points to the input, confident ones
        ("lifter_model", pa.string()),  # which lifter made the row: temporal | single
    ]
)

# One row per lifted row of a keypoints3d table, in the world frame that `export` estimated (export.world).
KEYPOINTS3D_WORLD_SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("track_id", pa.int64()),
        ("part", pa.int64()),  # which exported part of the track holds the row (1, 2, ...); 0: not exported
        ("kp3d_world_x", _fixed(pa.float32(), NUM_H36M_JOINTS)),  # H36M-17, metres, y up, floor at y = 0
        ("kp3d_world_y", _fixed(pa.float32(), NUM_H36M_JOINTS)),
        ("kp3d_world_z", _fixed(pa.float32(), NUM_H36M_JOINTS)),
    ]
)

MANIFEST_SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("status", pa.string()),  # done | failed | skipped
        ("error", pa.string()),
        ("frames", pa.int64()),
        ("people", pa.int64()),  # most people tracked in one frame
        ("detections", pa.int64()),  # rows written: (frame, track) pairs
        ("tracks", pa.int64()),
        ("seconds", pa.float64()),
        ("model", pa.string()),
        ("model_sha256", pa.string()),
        ("tool_version", pa.string()),
        ("output", pa.string()),
    ]
)


def _fixed_array(values: np.ndarray, dtype: pa.DataType, size: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=dtype.to_pandas_dtype()).reshape(-1), type=dtype)
    return pa.FixedSizeListArray.from_arrays(flat, size)


KEYPOINT_COLUMNS = ("video", "frame", "time_s", "track_id", "bbox", "score", "keypoints", "width", "height")


@dataclass
class KeypointTable:
    """Columns of a keypoints2d table as numpy arrays, one entry per (video, frame, track)."""

    video: np.ndarray  # object (N,) str
    frame: np.ndarray  # int64 (N,)
    time_s: np.ndarray  # float64 (N,)
    track_id: np.ndarray  # int64 (N,)
    bbox: np.ndarray  # float32 (N, 4)
    score: np.ndarray  # float32 (N,)
    keypoints: np.ndarray  # float32 (N, 17, 3): x, y, confidence
    width: np.ndarray  # int32 (N,)
    height: np.ndarray  # int32 (N,)
    metadata: dict[str, str]

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def concat(cls, tables: list[KeypointTable]) -> KeypointTable:
        """The rows of several tables, in order; the first table's metadata."""
        columns = {name: np.concatenate([getattr(t, name) for t in tables]) for name in KEYPOINT_COLUMNS}
        return cls(**columns, metadata=dict(tables[0].metadata))

    def take(self, rows: np.ndarray) -> KeypointTable:
        """The given rows (indices or a boolean mask), with the same metadata."""
        return KeypointTable(**{name: getattr(self, name)[rows] for name in KEYPOINT_COLUMNS}, metadata=self.metadata)

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_arrays(
            [
                pa.array(self.video, pa.string()),
                pa.array(self.frame, pa.int64()),
                pa.array(self.time_s, pa.float64()),
                pa.array(self.track_id, pa.int64()),
                _fixed_array(self.bbox, pa.float32(), 4),
                pa.array(self.score, pa.float32()),
                _fixed_array(self.keypoints[..., 0], pa.float32(), NUM_COCO_JOINTS),
                _fixed_array(self.keypoints[..., 1], pa.float32(), NUM_COCO_JOINTS),
                _fixed_array(self.keypoints[..., 2], pa.float32(), NUM_COCO_JOINTS),
                pa.array(self.width, pa.int32()),
                pa.array(self.height, pa.int32()),
            ],
            schema=KEYPOINTS2D_SCHEMA,
        )


class Keypoints2DWriter:
    """Stream rows into a keypoints2d Parquet file in row groups, so memory stays bounded.

    File-level metadata is added at `close`, when the frame count is known.
    """

    def __init__(self, path: Path, row_group_rows: int = 4096) -> None:
        self._writer = pq.ParquetWriter(str(path), KEYPOINTS2D_SCHEMA, compression="zstd")
        self._pending: list[KeypointTable] = []
        self._pending_rows = 0
        self._row_group_rows = row_group_rows
        self.rows = 0

    def append(self, table: KeypointTable) -> None:
        if len(table) == 0:
            return
        self._pending.append(table)
        self._pending_rows += len(table)
        if self._pending_rows >= self._row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables([t.to_arrow() for t in self._pending]))
            self.rows += self._pending_rows
        self._pending, self._pending_rows = [], 0

    def close(self, metadata: dict[str, Any]) -> None:
        self._flush()
        self._writer.add_key_value_metadata(encode_metadata(metadata))
        self._writer.close()

    def abort(self) -> None:
        self._writer.close()


def write_parquet(table: pa.Table, path: Path, metadata: dict[str, Any]) -> None:
    """Write a whole table with `camerapose.*` file-level metadata."""
    writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
    writer.write_table(table)
    writer.add_key_value_metadata(encode_metadata(metadata))
    writer.close()


def encode_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    return {f"{META_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def read_metadata(path: Path) -> dict[str, str]:
    """The `camerapose.*` file-level metadata of a Parquet file, without the prefix."""
    raw = pq.ParquetFile(str(path)).metadata.metadata or {}
    return {k.decode()[len(META_PREFIX) :]: v.decode() for k, v in raw.items() if k.decode().startswith(META_PREFIX)}


def file_stamp(path: Path, prefix: str) -> dict[str, int]:
    """`<prefix>_size` and `<prefix>_mtime_ns` of an input file, recorded in an output's footer."""
    stat = path.stat()
    return {f"{prefix}_size": stat.st_size, f"{prefix}_mtime_ns": stat.st_mtime_ns}


def output_is_current(out_path: Path, input_path: Path, prefix: str, expected: dict[str, str]) -> bool:
    """True when `out_path`'s footer says it was made from `input_path` as it is now, with the `expected` values.

    Every stage skips finished inputs this way; a changed input, model or setting makes the output stale.
    """
    try:
        meta = read_metadata(out_path)
        wanted = {k: str(v) for k, v in file_stamp(input_path, prefix).items()}
    except Exception:
        return False
    return all(meta.get(k) == v for k, v in {**wanted, **expected}.items())


def validate_keypoints2d_schema(schema: pa.Schema, path: Path) -> None:
    for field in KEYPOINTS2D_SCHEMA:
        if field.name not in schema.names:
            raise SchemaError(f"{path}: not a keypoints2d table (missing column {field.name!r})")
        actual = schema.field(field.name).type
        if actual != field.type:
            raise SchemaError(f"{path}: column {field.name!r} is {actual}, expected {field.type}")


def read_keypoints2d(path: Path) -> KeypointTable:
    """Read and validate a keypoints2d Parquet file written by `extract` (or anyone following the contract)."""
    try:
        pf = pq.ParquetFile(str(path))
    except (OSError, pa.ArrowException) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None
    validate_keypoints2d_schema(pf.schema_arrow, path)
    table = pf.read(columns=KEYPOINTS2D_SCHEMA.names)
    n = table.num_rows

    def fixed(name: str, size: int) -> np.ndarray:
        column = table.column(name).combine_chunks()
        if column.null_count:
            raise SchemaError(f"{path}: column {name!r} has nulls")
        return column.flatten().to_numpy(zero_copy_only=False).reshape(n, size)

    keypoints = np.stack(
        [fixed("kp_x", NUM_COCO_JOINTS), fixed("kp_y", NUM_COCO_JOINTS), fixed("kp_conf", NUM_COCO_JOINTS)],
        axis=-1,
    )
    return KeypointTable(
        video=table.column("video").to_numpy(zero_copy_only=False),
        frame=table.column("frame").to_numpy(),
        time_s=table.column("time_s").to_numpy(),
        track_id=table.column("track_id").to_numpy(),
        bbox=fixed("bbox", 4),
        score=table.column("score").to_numpy(),
        keypoints=keypoints.astype(np.float32),
        width=table.column("width").to_numpy(),
        height=table.column("height").to_numpy(),
        metadata=read_metadata(path),
    )


def keypoints3d_table(columns: dict[str, np.ndarray], schema: pa.Schema = KEYPOINTS3D_SCHEMA) -> pa.Table:
    """Build a keypoints3d (or keypoints3d_world) Arrow table from numpy columns named as in the schema (fixed
    lists as 2D arrays)."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_fixed_size_list(field.type):
            arrays.append(_fixed_array(values, field.type.value_type, field.type.list_size))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def find_keypoints2d_tables(path: Path) -> tuple[Path, list[Path]]:
    """(folder, tables): the keypoints2d tables that a stage or `train --weak-2d` reads from `path`. One rule:

    a run folder (it has `keypoints2d/`) gives the tables under `RUN/keypoints2d/`; any other folder (such as
    `RUN/keypoints2d_refined/`) gives the `.parquet` files under it. Manifests and hidden files (partial
    outputs) are never tables.
    """
    root = path / "keypoints2d" if (path / "keypoints2d").is_dir() else path
    return root, table_files(root)


def table_files(root: Path) -> list[Path]:
    """The `.parquet` tables under a folder: not manifests, not hidden files (partial outputs)."""
    return [
        p
        for p in sorted(root.rglob("*.parquet"))
        if not p.name.startswith("manifest") and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
