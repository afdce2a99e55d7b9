"""Probes of a bundle as an attacker or an accident leaves it: an edited manifest, paths that
leave the bundle, malformed fields, native model files that crash their library, a network
description that asks for terabytes, and signatures. Every case must end in a clear
``BundleError`` (or a correct answer): no raw traceback, no native crash, no file read from
outside the bundle. docs/security.md describes what is checked and why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import takeoff
from takeoff import bundle, bundle_manifest, signing
from takeoff.cli import app
from takeoff.errors import BundleError, TakeoffError

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def modern(fixtures, tmp_path_factory) -> Path:
    """The format-1 fixture (LightGBM + MLP) saved again by this takeoff: a bundle with a digest."""
    out = tmp_path_factory.mktemp("bundles") / "cancer"
    takeoff.load(fixtures / "bundle-v1").save(out)
    return out


@pytest.fixture(scope="module")
def rows(fixtures) -> pd.DataFrame:
    return pd.read_csv(fixtures / "bundle-v1-rows.csv")


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    release, release_pub = signing.generate_key(folder / "release.pem")
    other, other_pub = signing.generate_key(folder / "other.pem")
    return {"private": release, "public": release_pub, "other": other, "other_public": other_pub}


def copy(source: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(source, target, symlinks=True)
    return target


def read(path: Path) -> dict:
    return json.loads((path / "takeoff.json").read_text())


def write(path: Path, manifest: dict, redigest: bool = True) -> None:
    """Write an edited manifest; ``redigest``: as an attacker who recomputes the digest would."""
    if redigest and "digest" in manifest:
        manifest["digest"] = bundle_manifest.digest(manifest)
    (path / "takeoff.json").write_text(json.dumps(manifest))


def rehash(path: Path, name: str, manifest: dict | None = None) -> dict:
    """Record a changed file's new sha256 in the manifest (and its digest): only a signature
    can tell the change now."""
    manifest = manifest or read(path)
    manifest["files"][name] = bundle.sha256(path / name)
    write(path, manifest)
    return manifest


# ------------------------------------------------------------------ the manifest is covered
EDITS = {
    "swapped classes": lambda m: m["task"].update(classes=m["task"]["classes"][::-1]),
    "decision threshold": lambda m: m.update(threshold=0.99),
    "blend weights": lambda m: [member.update(weight=w) for member, w in zip(m["members"], (1.0, 0.0))],
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_an_edited_manifest_is_refused(modern, tmp_path, rows, edit):
    bundle_copy = copy(modern, tmp_path)
    before = takeoff.load(bundle_copy).predict_proba(rows)
    manifest = read(bundle_copy)
    EDITS[edit](manifest)
    write(bundle_copy, manifest, redigest=False)
    with pytest.raises(BundleError, match="takeoff.json was changed after it was written"):
        takeoff.load(bundle_copy)
    assert before.shape == (len(rows), 2)


@pytest.mark.parametrize("version", [-1, 0, 1.5, "1", True, None])
def test_a_format_version_that_is_not_a_whole_number_from_1_is_refused(modern, tmp_path, version):
    bundle_copy = copy(modern, tmp_path)
    manifest = read(bundle_copy)
    manifest["format_version"] = version
    write(bundle_copy, manifest)
    with pytest.raises(BundleError, match=r"format version .*whole numbers from 1"):
        takeoff.load(bundle_copy)


def test_the_version_is_the_start_of_the_digest_and_signing_keeps_it(modern, tmp_path, keys):
    manifest = read(modern)
    assert manifest["digest"] == bundle_manifest.digest(manifest)
    model = takeoff.load(modern)
    assert model.version == manifest["digest"].removeprefix("sha256:")[:12]
    signed = copy(modern, tmp_path)
    signing.sign(signed, signing.private_key(keys["private"]))
    assert takeoff.load(signed).version == model.version


def test_a_legacy_bundle_without_a_digest_loads_with_one_warning(fixtures, rows, caplog):
    bundle._warned_legacy.clear()
    with caplog.at_level(logging.WARNING, logger="takeoff"):
        first = takeoff.load(fixtures / "bundle-v1")
        takeoff.load(fixtures / "bundle-v1")
    warnings = [r for r in caplog.records if "has no digest" in r.getMessage()]
    assert len(warnings) == 1 and "takeoff sign" in warnings[0].getMessage()
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert first.predict(rows).tolist() == expected["prediction"].tolist()


# ------------------------------------------------------------------ signing
def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_sign_then_verify_and_what_a_signature_catches(modern, tmp_path, keys):
    signed = copy(modern, tmp_path)
    unsigned = cli("verify", signed, "--key-file", keys["public"])
    assert unsigned.exit_code == 4 and "is not signed" in unsigned.output
    result = cli("sign", signed, "--key-file", keys["private"])
    assert result.exit_code == 0, result.output
    key_id = signing.key_id(signing.public_key(keys["public"]))
    assert f"with key {key_id}" in result.output
    ok = cli("verify", signed, "--key-file", keys["public"], "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["signature_checked"] is True
    assert cli("verify", signed, "--key-file", keys["other_public"]).exit_code == 4
    # an attacker rewrites the threshold and recomputes the digest: only the signature tells
    manifest = read(signed)
    manifest["threshold"] = 0.01
    write(signed, manifest)
    takeoff.load(signed)  # intact as far as the digest goes
    tampered = cli("verify", signed, "--key-file", keys["public"])
    assert tampered.exit_code == 4 and "changed after it was signed" in tampered.output


def test_the_signing_key_can_come_from_the_environment(modern, tmp_path, keys):
    signed = copy(modern, tmp_path)
    env = {signing.SIGNING_ENV: keys["private"].read_text(), signing.VERIFY_ENV: keys["public"].read_text()}
    assert cli("sign", signed, env=env).exit_code == 0
    result = cli("verify", signed, env=env)
    assert result.exit_code == 0 and "verified" in result.output
    assert cli("sign", signed, env={signing.SIGNING_ENV: "not a key"}).exit_code == 2


def test_signing_a_tampered_bundle_is_refused(modern, tmp_path, keys):
    broken = copy(modern, tmp_path)
    with open(broken / "features.json", "a") as handle:
        handle.write(" ")
    result = cli("sign", broken, "--key-file", keys["private"])
    assert result.exit_code == 4 and "features.json does not match" in result.output
    assert "signature" not in read(broken)


def test_signing_a_legacy_bundle_adds_its_digest(fixtures, tmp_path, keys, rows):
    legacy = copy(fixtures / "bundle-v1", tmp_path)
    signing.sign(legacy, signing.private_key(keys["private"]))
    manifest = read(legacy)
    assert manifest["digest"] == bundle_manifest.digest(manifest)
    assert signing.verify(legacy, signing.public_key(keys["public"])).checked
    expected = pd.read_csv(fixtures / "bundle-v1-expected.csv")
    assert takeoff.load(legacy).predict(rows).tolist() == expected["prediction"].tolist()


def test_serve_require_signed(modern, tmp_path, keys, monkeypatch):
    import takeoff.serving

    started = []
    monkeypatch.setattr(takeoff.serving, "serve", lambda source, settings, on_ready: started.append(source))
    unsigned = copy(modern, tmp_path, "unsigned")
    refused = cli("serve", unsigned, "--require-signed", "--verify-key", keys["public"])
    assert refused.exit_code == 4 and "is not signed" in refused.output
    no_key = cli("serve", unsigned, "--require-signed", env={signing.VERIFY_ENV: ""})
    assert no_key.exit_code == 2 and "TAKEOFF_VERIFY_KEY" in no_key.output
    # a directory of bundles: one unsigned bundle in it is enough to refuse
    many = tmp_path / "many"
    many.mkdir()
    signed = copy(modern, many, "signed")
    signing.sign(signed, signing.private_key(keys["private"]))
    copy(modern, many, "unsigned")
    refused = cli("serve", many, "--require-signed", "--verify-key", keys["public"])
    assert refused.exit_code == 4 and "unsigned: is not signed" in refused.output
    wrong = cli("serve", signed, "--require-signed", "--verify-key", keys["other_public"])
    assert wrong.exit_code == 4 and "signed by another key" in wrong.output
    assert started == []
    # signed by the trusted key: the server is started
    ok = cli("serve", signed, "--require-signed", "--verify-key", keys["public"])
    assert ok.exit_code == 0, ok.output
    assert started == [signed]
    # without --require-signed nothing is checked (signing is opt-in)
    assert cli("serve", unsigned).exit_code == 0 and started[-1] == unsigned


# ------------------------------------------------------------------ confined paths
def test_an_absolute_member_folder_is_refused(modern, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(modern / "members" / "lightgbm", outside)
    bundle_copy = copy(modern, tmp_path)
    manifest = read(bundle_copy)
    manifest["members"][0]["dir"] = str(outside)
    write(bundle_copy, manifest)
    with pytest.raises(BundleError, match=r"'members.0.dir' names a path outside the bundle"):
        takeoff.load(bundle_copy)


def test_a_member_folder_climbing_out_is_refused(modern, tmp_path):
    bundle_copy = copy(modern, tmp_path)
    manifest = read(bundle_copy)
    manifest["members"][1]["dir"] = "../copy/members/mlp"
    write(bundle_copy, manifest)
    with pytest.raises(BundleError, match=r"'members.1.dir' names a path outside"):
        takeoff.load(bundle_copy)


def test_a_symlinked_member_folder_is_refused(modern, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(modern / "members" / "mlp", outside)
    bundle_copy = copy(modern, tmp_path)
    shutil.rmtree(bundle_copy / "members" / "mlp")
    (bundle_copy / "members" / "mlp").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match=r"'files.members/mlp/mlp.json'.*resolves to .*elsewhere.*outside the bundle"):
        takeoff.load(bundle_copy)


def test_a_symlink_to_a_system_file_is_refused(modern, tmp_path):
    bundle_copy = copy(modern, tmp_path)
    (bundle_copy / "report.html").unlink()
    (bundle_copy / "report.html").symlink_to("/etc/passwd")
    rehash(bundle_copy, "report.html")
    with pytest.raises(BundleError, match="report.html.*outside the bundle"):
        takeoff.load(bundle_copy)
    # a link the manifest does not list is refused as well
    other = copy(modern, tmp_path, "other")
    (other / "members" / "mlp" / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(BundleError, match="notes.txt is a symbolic link to .*outside the bundle"):
        takeoff.load(other)


def test_a_loop_of_symbolic_links_is_refused(modern, tmp_path):
    bundle_copy = copy(modern, tmp_path)
    (bundle_copy / "a").symlink_to("b")
    (bundle_copy / "b").symlink_to("a")
    with pytest.raises(BundleError, match="loop of symbolic links"):
        takeoff.load(bundle_copy)


def test_the_digest_survives_names_beyond_ascii(fixtures, tmp_path, rows):
    model = takeoff.load(fixtures / "bundle-v1")
    model.manifest["task"]["classes"] = model.task.classes = ["bénin", "malin \u2028 ☃"]
    saved = model.save(tmp_path / "unicode")
    loaded = takeoff.load(saved)
    assert loaded.classes == ["bénin", "malin \u2028 ☃"] and set(loaded.predict(rows)) <= set(loaded.classes)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/passwd", "members/../../x"])
def test_files_outside_the_bundle_are_refused(modern, tmp_path, name):
    bundle_copy = copy(modern, tmp_path)
    manifest = read(bundle_copy)
    manifest["files"][name] = "0" * 64
    write(bundle_copy, manifest)
    with pytest.raises(BundleError, match="names a path outside the bundle"):
        takeoff.load(bundle_copy)


# ------------------------------------------------------------------ manifest validation
MALFORMED = {
    "files as a list": (lambda m: m.update(files=list(m["files"])), "files"),
    "files null": (lambda m: m.update(files=None), "files"),
    "a file hash that is not sha256": (lambda m: m["files"].update({"features.json": "abc"}), "files.features.json"),
    "members missing": (lambda m: m.pop("members"), "members"),
    "members empty": (lambda m: m.update(members=[]), "members"),
    "a member without a folder": (lambda m: m["members"][0].pop("dir"), "members.0.dir"),
    "a weight that is text": (lambda m: m["members"][1].update(weight="1"), "members.1.weight"),
    "a negative weight": (lambda m: m["members"][1].update(weight=-1.0), "members.1.weight"),
    "schema as an object": (lambda m: m.update(schema={"a": 1}), "schema"),
    "a column without a kind": (lambda m: m["schema"][0].pop("kind"), "schema.0.kind"),
    "task as a list": (lambda m: m.update(task=["binary"]), "task"),
    "task as text": (lambda m: m.update(task="binary"), "task"),
    "task without kind": (lambda m: m["task"].pop("kind"), "task.kind"),
    "three classes for binary": (lambda m: m["task"].update(classes=["a", "b", "c"]), "task"),
    "repeated classes": (lambda m: m["task"].update(classes=["a", "a"]), "task"),
    "threshold above 1": (lambda m: m.update(threshold=7.0), "threshold"),
    "threshold as a list": (lambda m: m.update(threshold=[0.5, 0.5]), "threshold"),
    "threshold as text": (lambda m: m.update(threshold="0.5"), "threshold"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_field_is_named(modern, tmp_path, case):
    edit, field = MALFORMED[case]
    bundle_copy = copy(modern, tmp_path)
    manifest = read(bundle_copy)
    edit(manifest)
    write(bundle_copy, manifest)
    with pytest.raises(BundleError, match=rf"takeoff.json is malformed: field '{field}'") as info:
        takeoff.load(bundle_copy)
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize("text", ["", "{", "not json", "[1, 2]", "\xff\xfe", "[" * 100_000 + "]" * 100_000])
def test_garbage_or_truncated_manifest_is_refused(modern, tmp_path, text):
    bundle_copy = copy(modern, tmp_path)
    if text == "":  # a folder where the file should be
        (bundle_copy / "takeoff.json").unlink()
        (bundle_copy / "takeoff.json").mkdir()
        with pytest.raises(BundleError, match="takeoff.json is not valid JSON"):
            takeoff.load(bundle_copy)
        (bundle_copy / "takeoff.json").rmdir()
    if text == "{":
        text = (modern / "takeoff.json").read_text()[:300]
    (bundle_copy / "takeoff.json").write_bytes(text.encode("latin-1") if text == "\xff\xfe" else text.encode())
    with pytest.raises(BundleError, match="takeoff.json is not"):
        takeoff.load(bundle_copy)


@pytest.mark.parametrize("state", ["{not json", "[]", '{"status": "interrupted"}', '{"status": 1, "source": [], "config": {}}'])
def test_a_corrupt_run_json_is_a_clear_error(tmp_path, state):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(state)
    with pytest.raises(BundleError, match="run.json is (not valid JSON|malformed)"):
        takeoff.load(run_dir)
    from takeoff.pipelines.run_dir import resume_state

    with pytest.raises(BundleError, match="run.json"):
        resume_state(run_dir)


def test_weight_files_flipped_or_truncated_are_refused(modern, tmp_path):
    weights = "members/mlp/mlp.safetensors"
    flipped = copy(modern, tmp_path, "flipped")
    data = bytearray((flipped / weights).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (flipped / weights).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="mlp.safetensors does not match its recorded sha256"):
        takeoff.load(flipped)
    truncated = copy(modern, tmp_path, "truncated")
    (truncated / weights).write_bytes((modern / weights).read_bytes()[:200])
    with pytest.raises(BundleError, match="mlp.safetensors does not match"):
        takeoff.load(truncated)
    rehash(truncated, weights)  # even with the hash rewritten: the file is checked
    with pytest.raises(BundleError, match="mlp.safetensors"):
        takeoff.load(truncated)


# ------------------------------------------------------------------ fuzzing the manifest
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
PLACES = [("format_version",), ("files",), ("task",), ("task", "kind"), ("task", "classes"), ("task", "target"),
          ("schema",), ("schema", 0), ("schema", 0, "kind"), ("members",), ("members", 0), ("members", 0, "dir"),
          ("members", 0, "weight"), ("members", 0, "family"), ("members", 1, "params"), ("threshold",), ("runtime",),
          ("onnx",), ("signature",), ("metrics",), ("members", 1, "target_transform")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(place=st.sampled_from(PLACES), value=JSON | st.sampled_from(["recommend", "search", "multiclass", "regression"]),
       delete=st.booleans())
def test_fuzzed_manifests_load_or_answer_a_bundle_error(modern, tmp_path, place, value, delete):
    """Any field replaced by any JSON value (or removed), the digest recomputed: the load
    answers a model or a clear error (a BundleError naming the field, or for a value this takeoff
    does not know, such as a newer target transform, an error saying what to do), never a raw
    exception."""
    target = tmp_path / "fuzz"
    if not target.exists():
        shutil.copytree(modern, target)
    manifest = read(modern)
    parent = manifest
    for key in place[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        parent.pop(place[-1], None)
    else:
        parent[place[-1]] = value
    write(target, manifest)
    try:
        takeoff.load(target)
    except BundleError as error:
        assert str(error).startswith("bundle ") and "Fix:" in str(error)
    except TakeoffError as error:
        assert "Fix:" in str(error), error


# ------------------------------------------------------------------ native model files
# what takeoff.load does for a LightGBM member, without importing torch for the MLP member
NATIVE = """
import sys
from pathlib import Path
from takeoff.bundle import read_manifest
from takeoff.data.schema import Task
from takeoff.errors import BundleError
from takeoff.models.lightgbm import LightGBMFamily
for path in sys.argv[1:]:
    try:
        manifest = read_manifest(path)
        member = next(m for m in manifest["members"] if m["family"] == "lightgbm")
        LightGBMFamily.restore(Path(path) / member["dir"], Task.from_json(manifest["task"]), member["params"])
        print(path, "LOADED")
    except BundleError as error:
        print(path, "REFUSED", error)
"""


def _resized(text: bytes) -> bytes:
    """``text`` with its tree_sizes header recomputed from the trees as they now are (so that
    the damage inside a tree is what is left to catch)."""
    starts = [m.start() for m in re.finditer(rb"^Tree=", text, re.MULTILINE)]
    end = text.index(b"\nend of trees") + 1
    sizes = [b - a for a, b in zip(starts, [*starts[1:], end])]
    return re.sub(rb"^tree_sizes=.*$", b"tree_sizes=" + b" ".join(b"%d" % n for n in sizes), text, count=1, flags=re.MULTILINE)


def _in_tree(text: bytes, field: bytes, replace) -> bytes:
    """Tree 3's line ``field=...`` rewritten by ``replace(values)``, tree_sizes kept consistent."""
    start = text.index(b"\nTree=3\n")
    line_start = text.index(b"\n" + field + b"=", start) + 1
    line_end = text.index(b"\n", line_start)
    values = text[line_start + len(field) + 1:line_end].split(b" ")
    return _resized(text[:line_start] + field + b"=" + b" ".join(replace(values)) + text[line_end:])


def _lightgbm_variants(modern: Path, tmp_path: Path) -> dict[str, Path]:
    name = "members/lightgbm/lightgbm.txt"
    text = (modern / name).read_bytes()
    assert _resized(text) == text
    variants = {
        # LightGBM aborts on a truncated file (a fatal error thrown in an OpenMP thread)...
        "truncated": text[: len(text) // 2],
        # ...and reads out of bounds (SIGSEGV) when tree_sizes runs past the end of the file
        "sizes past the end": text.replace(b"tree_sizes=", b"tree_sizes=900000", 1),
        # a garbled number inside a tree (SIGABRT)
        "garbled": _in_tree(text, b"leaf_value", lambda v: [b"x" + v[0], *v[1:]]),
        # a missing value: LightGBM's array of that length is read past its end
        "short": _in_tree(text, b"threshold", lambda v: v[:-1]),
        # the root's child is the root: predict would loop
        "loop": _in_tree(text, b"left_child", lambda v: [b"0", *v[1:]]),
        # a feature past the header's count: predict reads past the row
        "feature out of range": _in_tree(text, b"split_feature", lambda v: [b"4000", *v[1:]]),
    }
    paths = {}
    for label, data in variants.items():
        target = copy(modern, tmp_path, label.replace(" ", "-"))
        (target / name).write_bytes(data)
        rehash(target, name)  # the hash rewritten after the damage: only the parse check is left
        paths[label] = target
    return paths


def test_damaged_lightgbm_files_are_refused_without_crashing_the_process(modern, tmp_path):
    paths = _lightgbm_variants(modern, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", NATIVE, *map(str, paths.values())], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, f"the process died ({result.returncode}): {result.stderr[-1500:]}"
    lines = {line.split(" ", 1)[0]: line for line in result.stdout.splitlines()}
    for label, path in paths.items():
        assert "REFUSED" in lines[str(path)] and "LightGBM model" in lines[str(path)], (label, lines[str(path)])


LIGHTGBM_LOADS = """
import sys, lightgbm, numpy as np
for path in sys.argv[1:]:
    try:
        booster = lightgbm.Booster(model_file=path)
        booster.predict(np.random.default_rng(0).normal(size=(64, booster.num_feature())) * 3)
    except (lightgbm.basic.LightGBMError, ValueError):
        pass  # what LightGBM raises (not a crash) is what the family's loader turns into a BundleError
print("ALIVE")
"""


def test_a_lightgbm_file_that_passes_the_check_never_crashes_lightgbm(fixtures, tmp_path):
    """Random damage (1 to 40 bytes changed, seeded): every file the check lets through is
    loaded and predicted from by LightGBM itself, in one child process that must survive."""
    import random

    from takeoff.models.lightgbm_text import check_model_text

    text = (fixtures / "bundle-v1" / "members" / "lightgbm" / "lightgbm.txt").read_bytes()
    rng = random.Random(26)
    passed, refused = [], 0
    for i in range(400):
        data = bytearray(text)
        for _ in range(rng.choice([1, 2, 5, 40])):
            data[rng.randrange(len(data))] = rng.choice(b"0123456789.-e =\n") if rng.random() < 0.7 else rng.randrange(256)
        try:
            check_model_text(bytes(data), "model")
        except BundleError:
            refused += 1
            continue
        path = tmp_path / f"m{i}.txt"
        path.write_bytes(bytes(data))
        passed.append(str(path))
    assert refused > 300 and passed  # most damage is caught; some (a digit of a leaf value) is harmless
    result = subprocess.run([sys.executable, "-c", LIGHTGBM_LOADS, *passed], capture_output=True, timeout=120)
    # (LightGBM echoes damaged names in its warnings: the output is bytes, not always UTF-8)
    assert result.returncode == 0 and b"ALIVE" in result.stdout, \
        f"LightGBM died ({result.returncode}): {result.stderr[-1500:].decode(errors='replace')}"


def test_lightgbm_models_with_categories_and_classes_pass_the_check(tmp_path):
    import lightgbm as lgb

    from takeoff.models.lightgbm_text import check_model_text

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 12, 600), rng.normal(size=600), rng.normal(size=600)])
    y = (X[:, 0] % 3 + (X[:, 1] > 0)).astype(int) % 3
    data = lgb.Dataset(X, y, categorical_feature=[0])
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "min_data_per_group": 5,
                         "cat_smooth": 1, "num_leaves": 15}, data, num_boost_round=15)
    text = booster.model_to_string().encode()
    assert b"num_cat=" in text and b"num_cat=0" != text[text.index(b"num_cat="):][:9]
    counts = check_model_text(text, "model")
    assert counts["num_class"] == 3 and counts["trees"] == 45


def test_an_mlp_spec_asking_for_terabytes_is_refused_before_allocating(modern, tmp_path):
    spec_name = "members/mlp/mlp.json"
    huge = copy(modern, tmp_path, "huge")
    document = json.loads((huge / spec_name).read_text())
    document["architecture"].update(n_numeric=1_000_000, hidden_sizes=[1_000_000])  # 1e12 floats: 4 TB
    (huge / spec_name).write_text(json.dumps(document))
    rehash(huge, spec_name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match="weights do not match the architecture.*in the file"):
        takeoff.load(huge)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 500_000  # KiB: nothing large was allocated
    wide = copy(modern, tmp_path, "wide")
    document["architecture"].update(n_numeric=30, hidden_sizes=[10**9])
    (wide / spec_name).write_text(json.dumps(document))
    rehash(wide, spec_name)
    with pytest.raises(BundleError, match=r"'architecture' is malformed: field 'hidden_sizes.0'"):
        takeoff.load(wide)


def test_an_mlp_spec_of_the_wrong_shape_is_named(modern, tmp_path):
    spec_name = "members/mlp/mlp.json"
    for i, edit in enumerate([{"hidden_sizes": "16"}, {"norm": "group"}, {"embedding_dims": [3]}, {"n_outputs": 0}]):
        target = copy(modern, tmp_path, f"spec{i}")
        document = json.loads((target / spec_name).read_text())
        document["architecture"].update(edit)
        (target / spec_name).write_text(json.dumps(document))
        rehash(target, spec_name)
        with pytest.raises(BundleError, match="architecture"):
            takeoff.load(target)
