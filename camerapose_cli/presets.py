"""Named stage presets: TOML files in `pipelines/`, merged with CLI flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camerapose_cli.resources import shipped_dir


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str, **overrides: Any) -> dict[str, Any]:
        """One stage's parameters, with every non-None override applied on top."""
        params = dict(self.sections.get(name, {}))
        unknown = set(overrides) - set(params)
        if unknown:
            raise KeyError(f"preset {self.name!r} has no [{name}] keys {sorted(unknown)}")
        params.update({k: v for k, v in overrides.items() if v is not None})
        return params


def available_presets() -> list[str]:
    return sorted(p.stem for p in shipped_dir("pipelines").glob("*.toml"))


def load_preset(name_or_path: str) -> Preset:
    """Load a shipped preset by name (`default`, `cpu-fast`) or any TOML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        path = candidate
    else:
        path = shipped_dir("pipelines") / f"{name_or_path}.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"no preset {name_or_path!r}: not a file, and not one of {', '.join(available_presets())}"
        )
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    sections = {k: v for k, v in data.items() if isinstance(v, dict)}
    if "extends" in data:  # inherit every table of the parent, then override key by key
        parent = load_preset(str(data["extends"]))
        merged = {k: dict(v) for k, v in parent.sections.items()}
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        sections = merged
    return Preset(name=str(data.get("name", path.stem)), path=path, sections=sections)
