"""Motion capture to body points: BVH files (in a folder or a .tar.xz) → (T, 21, 3) metres, Y up.

Any skeleton works through a joint-name map (defaults cover Bandai-Namco, CMU and Mixamo-style names).
Face points and the H36M head/nose points are derived from the head joint's orientation: the head's own
axes are calibrated per clip against the torso, so the skeleton's local axis conventions do not matter.
Preprocessed arrays are cached under ~/.cache/camerapose (or $CAMERAPOSE_CACHE).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from camerapose_cli.core import body, skeleton
from camerapose_cli.core.body import place_head_points, torso_frame, y_up_rotation
from camerapose_cli.core.skeleton import (
    BODY_INDEX,
    BODY_POINTS,
    BVH_JOINT_NAMES,
    HEAD_FRAME_OFFSETS,
    OPTIONAL_BVH_POINTS,
    SPINE_CHAIN_FRACTION,
)
from camerapose_cli.errors import InputError
from camerapose_cli.io import bvh
from camerapose_cli.io.atomic import atomic_output
from camerapose_cli.io.bvh import BvhMotion, parse_bvh
from camerapose_cli.io.resources import cache_dir

MAPPED_POINTS = tuple(BVH_JOINT_NAMES)
# Metres per file unit ([mocap] unit); "auto" guesses from the body's size.
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
NAME_SEPARATORS = ":|_ -."  # what ends a shared joint-name prefix


@dataclass
class MocapSet:
    """Body points of many clips, concatenated: `points[starts[i]:starts[i+1]]` is clip `names[i]`."""

    names: list[str]
    starts: np.ndarray  # int64 (C+1,)
    points: np.ndarray  # float32 (N, 21, 3), metres, world Y up
    fps: np.ndarray  # float32 (C,)
    descriptions: list[str]  # (C,) each clip's motion description from a `*motions.csv` beside it, else ""
    folders: list[str]  # (C,) each clip's folder below the source, less the folders that every clip is in ("")

    def clip(self, name: str) -> np.ndarray:
        i = self.names.index(name)
        return self.points[self.starts[i] : self.starts[i + 1]]

    def frames_of(self, names: list[str]) -> np.ndarray:
        """Frame indices into `points` of the given clips."""
        index = {n: i for i, n in enumerate(self.names)}
        return np.concatenate(
            [np.arange(self.starts[index[n]], self.starts[index[n] + 1]) for n in names] or [np.zeros(0, int)]
        )


def joint_key(name: str) -> str:
    """A joint name without case or separators: "Left_Up-Leg" and "leftupleg" are one name."""
    return "".join(c for c in name.lower() if c.isalnum())


def bare_joint_names(names: list[str]) -> list[str]:
    """Joint names without a namespace or path ("mixamorig:Hips", "rig|Hips") and without a prefix that every
    joint shares up to a separator ("Bip01 L Thigh", "Character1_LeftUpLeg")."""
    bare = [name.rsplit(":", 1)[-1].rsplit("|", 1)[-1] for name in names]
    prefix = os.path.commonprefix(bare) if len(bare) > 1 else ""
    if prefix and prefix[-1] not in NAME_SEPARATORS:
        if any(len(name) > len(prefix) and name[len(prefix)] not in NAME_SEPARATORS for name in bare):
            prefix = prefix[: max(prefix.rfind(c) for c in NAME_SEPARATORS) + 1]  # back to a whole word
    return [name[len(prefix) :].lstrip(NAME_SEPARATORS) for name in bare]


def resolve_joint_names(available: list[str], overrides: dict[str, str | list[str]] | None = None) -> dict[str, int]:
    """Pick the BVH joint index of every mapped body point: a candidate name exactly, else ignoring case, else by
    joint_key of the bare names. Raise InputError naming what is missing; OPTIONAL_BVH_POINTS may be."""
    candidates = {k: list(v) for k, v in BVH_JOINT_NAMES.items()}
    for point, names in (overrides or {}).items():
        if point not in candidates:
            raise InputError(f"unknown body point {point!r} in the joint map; known: {', '.join(MAPPED_POINTS)}")
        candidates[point] = [names] if isinstance(names, str) else list(names)
    lookups: list[tuple[dict[str, int], Callable[[str], str]]] = []
    for keys, normalize in (
        (available, str),
        ([name.lower() for name in available], str.lower),
        ([joint_key(name) for name in bare_joint_names(available)], joint_key),
    ):
        index: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key:
                index.setdefault(key, i)
        lookups.append((index, normalize))
    chosen, missing = {}, []
    for point, names in candidates.items():
        found = next((index[norm(n)] for index, norm in lookups for n in names if norm(n) in index), None)
        if found is not None:
            chosen[point] = found
        elif point not in OPTIONAL_BVH_POINTS or point in (overrides or {}):
            missing.append(f"{point} (tried {', '.join(names)})")
    if missing:
        raise InputError("no joint for " + "; ".join(missing) + ": pass a joint map")
    return chosen


def _unit_scale(pelvis_to_head: float) -> float:
    """Metres per file unit, guessed from the median pelvis-to-head distance (about 0.55 m in people)."""
    if pelvis_to_head > 200:
        return 0.001  # millimetres
    if pelvis_to_head > 35:
        return 0.01  # centimetres
    if pelvis_to_head > 8:
        return 0.0254  # inches
    return 1.0


def _orthonormal(matrix: np.ndarray) -> np.ndarray:
    """The nearest orthonormal matrix (polar factor). The (forward, up, left) frame is left-handed, so no det fix."""
    u, _, vt = np.linalg.svd(matrix)
    return u @ vt


def point_along_chain(
    positions: np.ndarray, parents: list[int], base: int, tip: int, fraction: float
) -> np.ndarray | None:
    """The point (T, 3) `fraction` of the way from joint `base` to its descendant `tip`, measured along the bones
    between them; None when `tip` does not descend from `base`."""
    chain = [tip]
    while chain[-1] != base:
        if parents[chain[-1]] < 0:
            return None
        chain.append(parents[chain[-1]])
    path = positions[:, chain[::-1]]  # (T, K, 3), base first
    lengths = np.linalg.norm(np.diff(path, axis=1), axis=-1)  # (T, K-1)
    reach = np.concatenate([np.zeros((len(path), 1)), np.cumsum(lengths, axis=1)], axis=1)
    target = fraction * reach[:, -1:]
    bone = np.clip((reach[:, 1:] < target).sum(axis=1), 0, len(chain) - 2)  # the bone the point falls on
    rows = np.arange(len(path))
    start, length = reach[rows, bone], lengths[rows, bone]
    t = np.divide(target[:, 0] - start, length, out=np.zeros_like(length), where=length > 0)
    return path[rows, bone] + t[:, None] * (path[rows, bone + 1] - path[rows, bone])


def body_points_from_bvh(
    motion: BvhMotion, joint_names: dict[str, str | list[str]] | None = None, unit: str = "auto"
) -> np.ndarray:
    """World body points (T, 21, 3) in metres, Y up, from a parsed BVH. `unit`: auto, m, cm or inch."""
    positions, rotations = motion.forward_kinematics()
    index = resolve_joint_names(motion.names, joint_names)
    mapped = {p: positions[:, j] for p, j in index.items()}
    if "spine" not in (joint_names or {}):
        parents = [j.parent for j in motion.joints]
        along = point_along_chain(positions, parents, index["pelvis"], index["thorax"], SPINE_CHAIN_FRACTION)
        if along is not None:
            mapped["spine"] = along
    if "spine" not in mapped:
        raise InputError("no spine: the thorax joint does not descend from the pelvis joint; pass a joint map")
    rise = np.median(mapped["head"] - mapped["pelvis"], axis=0)
    to_y_up = y_up_rotation(rise)
    scale = _unit_scale(float(np.linalg.norm(rise))) if unit == "auto" else UNIT_SCALES[unit]
    points = np.zeros((len(positions), len(BODY_POINTS), 3))
    for point in MAPPED_POINTS:
        if point != "head":
            points[:, BODY_INDEX[point]] = mapped[point] @ to_y_up.T * scale
    head_pos = mapped["head"] @ to_y_up.T * scale
    head_rot = to_y_up @ rotations[:, index["head"]]
    torso = torso_frame(points)
    # The head's (forward, up, left) axes in its own local frame, averaged over the clip, so the skeleton's
    # local axis conventions do not matter.
    local_axes = _orthonormal(np.einsum("tji,tjk->ik", head_rot, torso))
    place_head_points(points, head_pos, head_rot @ local_axes, tuple(HEAD_FRAME_OFFSETS))
    return points.astype(np.float32)


@dataclass
class BvhSource:
    """One BVH clip of a mocap source: its clip name, its text, and where it came from (for error lines)."""

    name: str
    text: str
    origin: str  # the file, or "archive: member"
    folder: str  # its folder below the source ("a/b"), "." at the top


def iter_bvh_sources(path: Path) -> Iterator[BvhSource]:
    """The BVH clips of a .bvh file, a folder of them (recursive), or a .tar/.tar.xz/.tar.gz."""
    if path.is_dir():
        for file in sorted(path.rglob("*.bvh")):
            folder = file.parent.relative_to(path).as_posix()
            yield BvhSource(file.stem, file.read_text(errors="replace"), str(file), folder)
    elif path.suffix.lower() == ".bvh":
        yield BvhSource(path.stem, path.read_text(errors="replace"), str(path), ".")
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.lower().endswith(".bvh"):
                    data = archive.extractfile(member).read()
                    text = io.TextIOWrapper(io.BytesIO(data), errors="replace").read()
                    member_path = PurePosixPath(member.name)
                    yield BvhSource(member_path.stem, text, f"{path}: {member.name}", str(member_path.parent))
    else:
        raise InputError(f"{path}: not a .bvh file, a folder of them, or a tar archive")


def read_motion_descriptions(path: Path) -> dict[str, str]:
    """Clip name -> motion description from a CMU-style `*motions.csv` (Subject, Trial #, Motion Description)
    beside the clips: in the folder or archive `path`. Empty when there is none."""
    text = None
    if path.is_dir():
        found = sorted(path.rglob("*motions.csv"))
        text = found[0].read_text(errors="replace") if found else None
    elif path.suffix.lower() != ".bvh" and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.lower().endswith("motions.csv"):
                    text = archive.extractfile(member).read().decode(errors="replace")
                    break
    if text is None:
        return {}
    descriptions = {}
    for row in csv.DictReader(io.StringIO(text)):
        try:
            name = f"{int(row['Subject']):03d}_{int(row['Trial #']):02d}"
        except (KeyError, TypeError, ValueError):
            continue
        descriptions[name] = row.get("Motion Description", "") or ""
    return descriptions


def _reader_code_digest() -> str:
    """A digest of the code that turns BVH into body points: any change to it makes old caches stale."""
    digest = hashlib.sha256()
    for module in (bvh, body, skeleton, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def distinct_folders(folders: list[str]) -> list[str]:
    """Clip folders ("a/b") without the leading folders that every clip shares: what tells clips apart."""
    parts = [PurePosixPath(folder).parts for folder in folders]
    shared = 0
    while parts and all(len(p) > shared and p[shared] == parts[0][shared] for p in parts):
        shared += 1
    return ["/".join(p[shared:]) for p in parts]


def report_skipped(lines: list[str]) -> None:
    """One line on stderr for each clip that could not be read (the others are used)."""
    for line in lines:
        print(f"error: {line} (clip skipped)", file=sys.stderr, flush=True)


def load_mocap(
    path: Path, joint_names: dict[str, str | list[str]] | None = None, *, unit: str = "auto", use_cache: bool = True
) -> MocapSet:
    """Read every clip under `path` into a MocapSet, from the cache when it is current."""
    stat = path.stat()
    key_source = json.dumps(
        [str(path.resolve()), stat.st_size, stat.st_mtime_ns, joint_names or {}, unit, _reader_code_digest()],
        sort_keys=True,
    )
    cache = cache_dir() / f"mocap-{hashlib.sha256(key_source.encode()).hexdigest()[:16]}.npz"
    if use_cache and cache.is_file():
        with np.load(cache) as data:
            report_skipped(list(data["skipped"]))
            return MocapSet(
                list(data["names"]),
                data["starts"],
                data["points"],
                data["fps"],
                list(data["descriptions"]),
                list(data["folders"]),
            )
    names, clips, fps, folders, skipped = [], [], [], [], []
    for source in iter_bvh_sources(path):
        try:
            motion = parse_bvh(source.text, source.origin)
            points = body_points_from_bvh(motion, joint_names, unit) if len(motion.motion) else None
        except InputError as error:
            message = str(error)
            skipped.append(message if message.startswith(source.origin) else f"{source.origin}: {message}")
            continue
        if points is not None:
            clips.append(points)
            names.append(source.name)
            folders.append(source.folder)
            fps.append(1.0 / motion.frame_time if motion.frame_time > 0 else 30.0)
    if not clips and len(skipped) == 1:
        raise InputError(skipped[0])
    report_skipped(skipped)
    if not clips:
        raise InputError(f"{path}: no readable BVH clips found")
    order = np.argsort(names)
    names = [names[i] for i in order]
    clips = [clips[i] for i in order]
    starts = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)
    described = read_motion_descriptions(path)
    result = MocapSet(
        names,
        starts,
        np.concatenate(clips),
        np.asarray([fps[i] for i in order], np.float32),
        [described.get(name, "") for name in names],
        distinct_folders([folders[i] for i in order]),
    )
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    names=np.asarray(names),
                    starts=starts,
                    points=result.points,
                    fps=result.fps,
                    descriptions=np.asarray(result.descriptions),
                    folders=np.asarray(result.folders, dtype=str),
                    skipped=np.asarray(skipped, dtype=str),
                )
    return result
