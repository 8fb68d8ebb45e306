"""Train/validation/test splits of mocap clips: whole clips and whole motion contents, never random frames."""

from __future__ import annotations

import hashlib

from camerapose_cli.config import MocapSection


def clip_content(name: str) -> str:
    """The motion content of a clip name such as `dataset-1_walk-left_tired_001` (`walk-left`); else the name."""
    parts = name.split("_")
    return parts[1] if len(parts) >= 4 and parts[0].startswith("dataset") else name


def _unit_hash(name: str) -> float:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_clips(names: list[str], cfg: MocapSection) -> dict[str, list[str]]:
    """`train`, `val`, `test_seen` (held-out clips of trained contents), `test_unseen` (held-out contents)."""
    holdout = set(cfg.holdout_contents)
    test_cut = cfg.test_fraction
    val_cut = test_cut + cfg.val_fraction
    splits: dict[str, list[str]] = {"train": [], "val": [], "test_seen": [], "test_unseen": []}
    for name in sorted(names):
        if clip_content(name) in holdout:
            splits["test_unseen"].append(name)
        else:
            h = _unit_hash(name)
            splits["test_seen" if h < test_cut else "val" if h < val_cut else "train"].append(name)
    return splits
