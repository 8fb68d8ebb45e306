"""Presets: shipped ones load, overrides are validated, and bad files are refused naming the file and the key."""

from __future__ import annotations

import pytest

from camerapose_cli.config import available_presets, load_preset
from camerapose_cli.errors import ConfigError


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


def write(path, text: str):
    path.write_text(text)
    return path


def test_a_misspelt_key_is_refused_naming_the_file_and_the_key(tmp_path):
    preset = write(tmp_path / "typo.toml", "[extract]\nimgzs = 320\n")
    with pytest.raises(ConfigError, match=r"typo\.toml: unknown key 'imgzs' in \[extract\]"):
        load_preset(str(preset))
    section = write(tmp_path / "section.toml", "[extrct]\nimgsz = 320\n")
    with pytest.raises(ConfigError, match=r"section\.toml: unknown section \[extrct\]"):
        load_preset(str(section))


def test_a_wrong_type_or_range_is_refused_naming_the_file_and_the_key(tmp_path):
    wrong = write(tmp_path / "wrong.toml", '[extract]\nimgsz = "big"\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml: \[extract\] imgsz"):
        load_preset(str(wrong))
    child = write(tmp_path / "child.toml", 'extends = "wrong.toml"\n[lift]\nfov_deg = 50.0\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml: \[extract\] imgsz"):  # the file that set the bad value
        load_preset(str(child))
    choice = write(tmp_path / "choice.toml", '[extract]\ntracker = "deepsort"\n')
    with pytest.raises(ConfigError, match=r"\[extract\] tracker"):
        load_preset(str(choice))
    device = write(tmp_path / "device.toml", '[extract]\ndevice = "gpu"\n')
    with pytest.raises(ConfigError, match=r"\[extract\] device"):
        load_preset(str(device))


def test_an_extends_cycle_is_refused(tmp_path):
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_preset(str(tmp_path / "a.toml"))


def test_extends_overrides_key_by_key(tmp_path):
    write(tmp_path / "base.toml", "[extract]\nimgsz = 320\nconf = 0.4\n")
    child = write(tmp_path / "child.toml", 'extends = "base.toml"\nname = "child"\n[extract]\nconf = 0.5\n')
    preset = load_preset(str(child))
    assert (preset.name, preset.extract.imgsz, preset.extract.conf) == ("child", 320, 0.5)
    assert preset.extract.tracker == load_preset("default").extract.tracker


def test_the_mocap_unit_is_read():
    assert load_preset("default").mocap.unit == "auto"
