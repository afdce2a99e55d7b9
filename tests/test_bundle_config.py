"""Bundle writing/reading mechanics and the configuration schema."""

from __future__ import annotations

import json

import pytest
import yaml

from takeoff import bundle
from takeoff.bundle_manifest import digest
from takeoff.config import default_config, json_schema, load_config, to_yaml
from takeoff.errors import BundleError, ConfigError


# the smallest manifest read_manifest accepts (every bundle names its task and that kind's fields)
BASE = {"task": {"kind": "search"}, "encoder": {}, "search": {}}


def test_write_is_atomic_and_hashes_everything(tmp_path):
    def fill(d):
        (d / "a.json").write_text("{}")
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(b"\x00\x01")

    path = bundle.write(tmp_path / "b", {**BASE, "hello": 1}, fill)
    manifest = bundle.read_manifest(path)
    assert set(manifest["files"]) == {"a.json", "sub/w.bin"} and manifest["hello"] == 1

    def broken(d):
        (d / "a.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        bundle.write(tmp_path / "b", {**BASE, "hello": 2}, broken)
    assert bundle.read_manifest(path)["hello"] == 1  # the old bundle is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp dirs left


def test_missing_file_and_path_escape_are_refused(tmp_path):
    path = bundle.write(tmp_path / "b", dict(BASE), lambda d: (d / "x.json").write_text("1"))
    (path / "x.json").unlink()
    with pytest.raises(BundleError, match="x.json is missing"):
        bundle.read_manifest(path)
    manifest = json.loads((path / "takeoff.json").read_text())
    manifest["files"] = {"../etc/passwd": "0" * 64}
    manifest["digest"] = digest(manifest)  # as a forger would: the path itself must be refused
    (path / "takeoff.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle.read_manifest(path)


def test_config_defaults_round_trip_through_yaml(tmp_path):
    text = to_yaml(default_config())
    (tmp_path / "c.yaml").write_text(text)
    again = load_config(tmp_path / "c.yaml")
    assert again == default_config()
    assert yaml.safe_load(text)["version"] == 1


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'time_budget'"):
        default_config(time_budgte=3)
    with pytest.raises(ConfigError, match="time_budget"):
        default_config(time_budget=-1)
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_beat_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("time_budget: 30\nseed: 4\n")
    cfg = load_config(tmp_path / "c.yaml", seed=9, target=None)
    assert cfg.time_budget == 30 and cfg.seed == 9


def test_json_schema_has_every_family():
    schema = json_schema()
    assert "models" in schema["properties"]
    text = json.dumps(schema)
    assert "num_leaves" in text and "hidden_sizes" in text
