"""Presets: TOML files in `pipelines/`, loaded once into typed, validated sections.

A preset file sets some keys and takes the rest from the preset it `extends` (the shipped `default` if it
names none), key by key.

A preset is validated when it loads: an unknown section or key, a value of the wrong type or out of range,
and an `extends` cycle are refused with a ConfigError that names the file and the key. Everything
downstream reads typed attributes (`preset.extract.imgsz`), never raw dictionaries.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from camerapose_cli.errors import ConfigError
from camerapose_cli.io.resources import shipped_dir

# Choices, defined once: presets, the CLI (checked at parse time) and the API share them.
Tracker = Literal["bytetrack", "botsort"]
Backend = Literal["auto", "torch", "openvino"]  # the detector's inference engine (detect.engines)
MocapUnit = Literal["auto", "m", "cm", "mm", "inch"]
Split = Literal["test_seen", "test_unseen", "val", "train", "all"]  # "all": every clip, for a set held out whole
ModelKind = Literal["lifter", "refiner", "temporal"]
Executor = Literal["local", "ray"]  # where a stage's inputs run: this process, or a Ray cluster (stages.ray_executor)
# The image edge that cuts a person (training.noise.FrameCut); side: the left or the right one.
FrameEdge = Literal["bottom", "side", "top"]
Precision = Literal["auto", "fp32", "bf16"]  # what the lifters compute in (core.device.resolve_precision)
LifterNoiseModel = Literal["gaussian", "detector"]  # the single-frame lifter's 2D corruption ([lifter_noise] model)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")

Range = tuple[float, float]


def check_device(name: str) -> str:
    """`auto`, `cpu`, `cuda` or `cuda:N`; anything else is a ValueError."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} is not a device: use auto, cpu, cuda or cuda:N")
    return name


class Section(BaseModel):
    """One table of a preset. Frozen: a changed value is a new object (`with_values`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    # Left out of output fingerprints: settings that change how fast a stage runs but not what it writes, and
    # paths whose content a model hash already covers.
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset()

    def with_values(self, **values: Any) -> Self:
        """A copy with the given values (None keeps the preset's), validated like the preset itself."""
        updates = {k: v for k, v in values.items() if v is not None}
        try:
            return type(self).model_validate({**self.model_dump(), **updates})
        except ValidationError as exc:
            table = next((name for name, cls in SECTIONS.items() if cls is type(self)), type(self).__name__)
            raise ConfigError(_describe(exc, f"[{table}]")) from None

    def result_settings(self) -> dict[str, Any]:
        """The settings that change a stage's output: what skip-if-current fingerprints."""
        return self.model_dump(mode="json", exclude=set(self.NOT_IN_FINGERPRINT))


class ExtractSection(Section):
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset(
        {"pose_model", "batch_size", "prefetch_batches", "threads", "decode_threads", "mmap_threshold_mb"}
    )
    pose_model: str
    imgsz: int = Field(ge=32)
    batch_size: int = Field(ge=1)
    device: str
    backend: Backend
    half: bool
    conf: float = Field(ge=0, le=1)
    iou: float = Field(ge=0, le=1)
    max_det: int = Field(ge=1)
    tracker: Tracker
    prefetch_batches: int = Field(ge=0)
    threads: int = Field(ge=0)
    decord_max_mb: float = Field(ge=0)
    decode_threads: int = Field(ge=0)
    mmap_threshold_mb: float = Field(ge=0, le=32)

    @field_validator("device")
    @classmethod
    def _valid_device(cls, value: str) -> str:
        return check_device(value)


class OverlaySection(Section):
    min_kp_conf: float = Field(ge=0, le=1)
    crf: int = Field(ge=0, le=51)
    encoder_preset: str
    view_size: int = Field(ge=64)


class MocapSection(Section):
    holdout_contents: tuple[str, ...]
    test_fraction: float = Field(ge=0, le=1)
    val_fraction: float = Field(ge=0, le=1)
    unit: MocapUnit


class SynthSection(Section):
    distance: Range
    camera_height: Range
    fov_deg: Range
    image_sizes: tuple[tuple[int, int], ...]
    principal_jitter: float
    aim_jitter_m: float
    off_centre: float
    roll_deg: float
    limb_scale: Range
    hip_width_scale: Range
    shoulder_width_scale: Range
    body_height_m: Range
    joint_offset_m: float = Field(ge=0)
    flip_prob: float = Field(ge=0, le=1)
    keypoint_hip_along_thigh: Range
    keypoint_knee_along_shin: Range
    keypoint_shoulder_up_m: Range
    frame_cut_prob: float = Field(ge=0, le=1)
    frame_cut_keep: Range
    frame_cut_conf_max: float = Field(ge=0, le=1)
    frame_cut_side_share: float = Field(ge=0, le=1)
    frame_cut_side_conf_max: float = Field(ge=0, le=1)
    frame_cut_top_share: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _edge_shares(self) -> SynthSection:
        if self.frame_cut_side_share + self.frame_cut_top_share > 1:
            raise ValueError("frame_cut_side_share + frame_cut_top_share must be at most 1 (the rest: the bottom edge)")
        return self


class LifterNoiseSection(Section):
    model: LifterNoiseModel
    detector_strength: Range
    noise_frac: Range
    conf_per_error: float
    conf_jitter: float
    conf_range: Range
    drop_prob: Range
    dropped_conf_max: float
    drop_wander: float


class DeviceChoice(Section):
    """A section with a `device` (auto | cpu | cuda | cuda:N); the stage fingerprints the device it resolves to."""

    device: str

    @field_validator("device")
    @classmethod
    def _valid_device(cls, value: str) -> str:
        return check_device(value)


class ScheduleSection(DeviceChoice):
    """What every training loop reads (training.loop.run_loop)."""

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    lr_final: float = Field(gt=0)
    seed: int
    threads: int = Field(ge=0)


class TrainSection(ScheduleSection):
    w_pose: float
    w_camera: float
    w_reproj: float
    val_every: int = Field(ge=1)
    val_samples: int = Field(ge=1)
    hidden: int = Field(ge=1)
    blocks: int = Field(ge=0)
    dropout: float = Field(ge=0, lt=1)
    pose_augment_prob: float = Field(ge=0, le=1)


class LiftSection(DeviceChoice):
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset({"batch_size", "device", "precision"})
    batch_size: int = Field(ge=1)
    precision: Precision
    fov_deg: float = Field(gt=0, lt=180)
    temporal: bool
    mirror_average: bool
    temporal_min_frames: int = Field(ge=1)
    max_gap_frames: int = Field(ge=0)
    person_height_m: float = Field(ge=0, le=3)


class ExportSection(Section):
    min_frames: int = Field(ge=1)
    max_gap_frames: int = Field(ge=0)
    upright_tolerance_deg: float = Field(gt=0, le=90)
    foot_lift_m: float = Field(gt=0)
    floor_spread_m: float = Field(gt=0)
    max_floor_tilt_deg: float = Field(gt=0, le=90)
    ankle_height_m: float = Field(ge=0)
    contact_height_m: float = Field(gt=0)
    contact_speed_m_s: float = Field(gt=0)
    pin_feet: bool


class RaySection(Section):
    """The Ray executor's cluster and resources. None of it changes what a stage writes."""

    address: str  # "": start a local Ray instance sized to this machine; "auto" or HOST:PORT: join a cluster
    workers: int = Field(ge=0)  # 0: as many as the cluster's CPUs (and GPUs) allow, at most one per input
    cpus_per_worker: int = Field(ge=1)
    gpus_per_worker: float = Field(ge=0)
    max_retries: int = Field(ge=0)
    object_store_mb: int = Field(ge=75)


class PoseAugmentSection(Section):
    arm_prob: float = Field(ge=0, le=1)
    shoulder_deg: float = Field(ge=0, le=180)
    elbow_flex_deg: Range
    leg_prob: float = Field(ge=0, le=1)
    hip_flex_deg: Range
    knee_flex_deg: Range
    hip_spread_deg: float = Field(ge=0, le=90)
    legs_apart_prob: float = Field(ge=0, le=1)
    max_flex_deg: float = Field(ge=0, le=180)
    recombine_prob: float = Field(ge=0, le=1)
    torso_prob: float = Field(ge=0, le=1)
    torso_flex_deg: Range
    torso_side_deg: float = Field(ge=0, le=90)
    torso_twist_deg: float = Field(ge=0, le=90)
    tilt_prob: float = Field(ge=0, le=1)
    tilt_deg: float = Field(ge=0, le=180)


class TrainTemporalSection(ScheduleSection):
    channels: int = Field(ge=1)
    dilations: tuple[int, ...]
    dropout: float = Field(ge=0, lt=1)
    outputs: int = Field(ge=1)
    fps: Range
    pan_prob: float = Field(ge=0, le=1)
    move_prob: float = Field(ge=0, le=1)
    camera_speed: float = Field(ge=0)
    edge_prob: float = Field(ge=0, le=1)
    noise_prob: float = Field(ge=0, le=1)
    pose_augment_prob: float = Field(ge=0, le=1)
    frame_cut_prob: float = Field(ge=0, le=1)
    w_pose: float
    w_camera: float
    w_reproj: float
    w_velocity: float
    val_every: int = Field(ge=1)
    val_windows: int = Field(ge=1)


class RefineSection(DeviceChoice):
    NOT_IN_FINGERPRINT: ClassVar[frozenset[str]] = frozenset({"device"})
    window: int = Field(ge=2)
    min_track_frames: int = Field(ge=1)
    border_margin: float = Field(ge=0, lt=0.5)


class TrainRefinerSection(ScheduleSection):
    stride: tuple[int, ...]
    anchor: float = Field(ge=0)
    trust_floor: float = Field(ge=0, lt=1)
    trust_power: float
    conf_tolerance: float = Field(gt=0)
    w_conf: float
    channels: int = Field(ge=1)
    save_every: int = Field(ge=1)
    frame_cut_prob: float = Field(ge=0, le=1)


class RefineNoiseSection(Section):
    calibration: str
    jitter_scale: float
    jitter_spread: float
    jitter_white_share: float = Field(ge=0, le=1)
    jitter_correlation_frames: float = Field(gt=0)
    conf_clean: float
    conf_per_error: float
    conf_noise: float
    swap_rate_min: float
    swap_max_frames: int = Field(ge=1)
    occlusion_rate: float
    occlusion_max_frames: int = Field(ge=1)
    occlusion_drift: float
    occluded_conf_max: float
    miss_rate_min: float
    spot_margin: float
    spike_rate: float
    spike_size: Range
    spike_conf_max: float
    gap_rate: float
    gap_max_frames: int = Field(ge=1)


class HarvestSection(Section):
    min_joint_conf: float = Field(ge=0, le=1)
    min_joints: int = Field(ge=0)
    min_track_frames: int = Field(ge=1)
    min_box_height_px: float = Field(ge=0)
    min_score: float = Field(ge=0, le=1)


class WeakSection(Section):
    batch_size: int = Field(ge=1)
    w_reproj: float
    w_bone: float
    w_symmetry: float
    bone_quantile: float = Field(ge=0, lt=0.5)
    fov_deg: float = Field(gt=0, lt=180)
    finetune_steps: int = Field(ge=1)
    finetune_lr: float = Field(gt=0)


@dataclass(frozen=True)
class Preset:
    """Every section of one preset, typed."""

    name: str
    path: Path
    extract: ExtractSection
    overlay: OverlaySection
    mocap: MocapSection
    synth: SynthSection
    lifter_noise: LifterNoiseSection
    train: TrainSection
    pose_augment: PoseAugmentSection
    train_temporal: TrainTemporalSection
    lift: LiftSection
    export: ExportSection
    refine: RefineSection
    train_refiner: TrainRefinerSection
    refine_noise: RefineNoiseSection
    harvest: HarvestSection
    weak: WeakSection
    ray: RaySection


SECTIONS: dict[str, type[Section]] = {
    "extract": ExtractSection,
    "overlay": OverlaySection,
    "mocap": MocapSection,
    "synth": SynthSection,
    "lifter_noise": LifterNoiseSection,
    "train": TrainSection,
    "pose_augment": PoseAugmentSection,
    "train_temporal": TrainTemporalSection,
    "lift": LiftSection,
    "export": ExportSection,
    "refine": RefineSection,
    "train_refiner": TrainRefinerSection,
    "refine_noise": RefineNoiseSection,
    "harvest": HarvestSection,
    "weak": WeakSection,
    "ray": RaySection,
}
TOP_LEVEL_KEYS = frozenset({"name", "description", "extends"})
DEFAULT_PRESET = "default"


def available_presets() -> list[str]:
    return sorted(p.stem for p in shipped_dir("pipelines").glob("*.toml"))


def _resolve(name_or_path: str, relative_to: Path | None = None) -> Path:
    candidate = Path(name_or_path)
    if relative_to is not None and not candidate.is_absolute() and (relative_to / candidate).is_file():
        return relative_to / candidate
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    path = shipped_dir("pipelines") / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(f"no preset {name_or_path!r}: not a file, and not one of {', '.join(available_presets())}")
    return path


def _as_tuples(value: Any) -> Any:
    """TOML arrays as tuples, so that ranges and lists in a preset are immutable."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def _read_layers(path: Path, chain: tuple[Path, ...]) -> tuple[str, list[tuple[Path, dict[str, dict[str, Any]]]]]:
    """(preset name, [(file, its sections)] from the root ancestor to `path`), checking each file's keys."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ConfigError(f"{path}: `extends` makes a cycle ({cycle})")
    if not path.is_file():
        raise ConfigError(f"no preset file {path}")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise ConfigError(f"{path}: unknown section [{key}]; known: {', '.join(SECTIONS)}")
            unknown = sorted(set(value) - set(SECTIONS[key].model_fields))
            if unknown:
                raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [{key}]")
            sections[key] = {k: _as_tuples(v) for k, v in value.items()}
        elif key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (top-level keys: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    layers: list[tuple[Path, dict[str, dict[str, Any]]]] = []
    # Every preset builds on another; one that names none builds on the shipped default.
    parent = data.get("extends", None if resolved == _resolve(DEFAULT_PRESET).resolve() else DEFAULT_PRESET)
    if parent is not None:
        _, layers = _read_layers(_resolve(str(parent), path.parent), (*chain, resolved))
    return str(data.get("name", path.stem)), [*layers, (path, sections)]


def _describe(exc: ValidationError, where: str) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    return f"{where} {key}: {error['msg']} (got {error.get('input')!r})"


def load_preset(name_or_path: str) -> Preset:
    """Load a shipped preset by name (`default`, `cpu-fast`) or any TOML file by path, validated."""
    name, layers = _read_layers(_resolve(name_or_path), ())
    merged: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    source: dict[tuple[str, str], Path] = {}
    for path, sections in layers:  # a child overrides its parent key by key
        for section, values in sections.items():
            merged[section].update(values)
            source.update({(section, key): path for key in values})
    typed: dict[str, Section] = {}
    for section, model in SECTIONS.items():
        try:
            typed[section] = model.model_validate(merged[section])
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else ""
            path = source.get((section, key), layers[-1][0])
            raise ConfigError(f"{path}: {_describe(exc, f'[{section}]')}") from None
    return Preset(name=name, path=layers[-1][0], **typed)  # type: ignore[arg-type]
