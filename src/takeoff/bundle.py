"""The on-disk model: a versioned directory of JSON + safetensors (+ LightGBM's text format).

``takeoff.json`` (the manifest) is written last and lists the sha256 of every other file, so a
directory is a bundle only once it is complete, and a changed file is caught at load time. Its
own content is covered by its ``digest`` (sha256 of its canonical JSON, see
:mod:`takeoff.bundle_manifest`), so an edited manifest is caught too, and it may carry a
``signature`` of that digest (:mod:`takeoff.signing`). Every field is validated and every path
it names must stay inside the bundle. Loading never executes code from the bundle; nothing in
it is pickled. docs/security.md says what this protects against and what it does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from takeoff import bundle_manifest
from takeoff.errors import BundleError

FORMAT = "takeoff-bundle"
FORMAT_VERSION = 1
MANIFEST = "takeoff.json"
RUN_STATE = "run.json"  # present while a training run is in progress or interrupted
# what :func:`write` (and ``takeoff sign``) add to a manifest
WRITTEN_FIELDS = ("format", "format_version", "files", *bundle_manifest.UNSIGNED)
LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "torch", "safetensors")

log = logging.getLogger("takeoff")
_warned_legacy: set[str] = set()  # bundles without a digest already warned about (once each)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, default=_json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through ``write(tmp)`` into a temporary file beside ``path``, then rename it
    into place: a reader never sees half a file (weights written with safetensors, ...)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_spec(directory: Path, spec_file: str, other_files: tuple[str, ...], fmt: str,
              versions: tuple[int, ...], label: str) -> dict[str, Any]:
    """A family's JSON spec, checked: its files exist, it parses, and it is of format ``fmt`` in
    one of ``versions`` (``label`` names the family in messages).

    Raises:
        BundleError: a file is missing, the spec is not JSON, or of another format or version.
    """
    directory = Path(directory)
    spec_path = directory / spec_file
    for name in (spec_file, *other_files):
        if not (directory / name).is_file():
            raise BundleError(str(directory), f"'{name}' is missing", "save the model again")
    try:
        document = json.loads(spec_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(str(spec_path), f"not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != fmt or document.get("version") not in versions:
        got = document if isinstance(document, dict) else {}
        raise BundleError(
            str(spec_path),
            f"unknown {label} format {got.get('format')!r} version {got.get('version')!r} "
            f"(this takeoff reads {fmt} version {max(versions)})",
            "retrain the model with this takeoff version",
        )
    return document


def write(path: str | Path, manifest: dict[str, Any], fill: Callable[[Path], None]) -> Path:
    """Write a bundle at ``path`` atomically.

    ``fill(directory)`` writes the bundle's files into a fresh temporary directory beside
    ``path``; then the manifest is written with every file's hash, and the directory is moved
    into place. An existing bundle or training-run directory at ``path`` is replaced; any other
    non-empty directory is refused.
    """
    path = Path(path)
    if path.exists() and not _replaceable(path):
        raise BundleError(
            str(path), "exists and is neither a takeoff bundle nor a training run",
            "choose another --out directory, or remove this one",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        # Some writers (safetensors, mkstemp) create private files; a bundle is meant to be
        # copied and served, so it gets the permissions of any other file written here.
        umask = os.umask(0)
        os.umask(umask)
        for item in [tmp, *tmp.rglob("*")]:
            item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
        files = {
            f.relative_to(tmp).as_posix(): sha256(f)
            for f in sorted(tmp.rglob("*"))
            if f.is_file()
        }
        content = {k: v for k, v in manifest.items() if k not in bundle_manifest.UNSIGNED}
        write_json(tmp / MANIFEST, with_digest({"format": FORMAT, "format_version": FORMAT_VERSION, **content, "files": files}))
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def with_digest(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` as it will read back from JSON, with its ``digest`` (and no signature)."""
    document = json.loads(json.dumps(manifest, default=_json_default))
    document.pop("signature", None)
    document["digest"] = bundle_manifest.digest(document)
    return document


def manifest_content(manifest: dict[str, Any]) -> dict[str, Any]:
    """A read manifest without the fields :func:`write` adds (format, version, file hashes):
    what to pass to :func:`write` to save the same bundle again."""
    return {k: v for k, v in manifest.items() if k not in WRITTEN_FIELDS}


def library_versions() -> dict[str, str]:
    """Python's version and those of the installed libraries a bundle depends on, for its
    manifest (a library that is not installed is left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _replaceable(path: Path) -> bool:
    if not path.is_dir():
        return False
    return (path / MANIFEST).exists() or (path / RUN_STATE).exists() or not any(path.iterdir())


def read_run_state(path: str | Path) -> dict[str, Any]:
    """The state (``run.json``) of the training run at ``path``, checked.

    Raises:
        BundleError: it is not JSON, or a field is missing or of the wrong shape (named).
    """
    state_path = Path(path) / RUN_STATE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON and UTF-8 errors
        raise BundleError(str(path), f"{RUN_STATE} is not valid JSON ({str(exc)[:200]}), so the run cannot be resumed",
                          "train again into a new --out directory") from None
    bundle_manifest.validate_run_state(Path(path), state, RUN_STATE)
    return state


def read_manifest(path: str | Path, verify: bool = True) -> dict[str, Any]:
    """Read and check a bundle's manifest: format, version, digest, fields, the paths it names,
    and (by default) every file's hash.

    A manifest without a ``digest`` (written before takeoff recorded one) loads with one
    warning per bundle: its content cannot be checked.

    Raises:
        BundleError: missing, unfinished, of an unknown or newer format, malformed (the field is
            named), naming a path outside the bundle, or tampered with.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(str(path), "does not exist", "pass the directory `takeoff train` wrote (it holds takeoff.json)")
    if not path.is_dir():
        raise BundleError(str(path), "is a file, not a bundle directory", "pass the directory that holds takeoff.json")
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        if (path / RUN_STATE).exists():
            state = read_run_state(path)
            raise BundleError(
                str(path), f"is an unfinished training run (status: {state.get('status', 'unknown')})",
                f"finish it with `takeoff train --resume {path}`",
            )
        raise BundleError(str(path), f"has no {MANIFEST}, so it is not a takeoff bundle", "pass the directory `takeoff train` wrote")
    bundle_manifest.confined(path, MANIFEST, MANIFEST)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON and UTF-8 errors
        raise BundleError(str(path), f"{MANIFEST} is not valid JSON ({str(exc)[:200]})", "re-create the bundle") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(str(path), f"{MANIFEST} is not a takeoff bundle manifest", "pass a directory written by takeoff")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(str(path), f"{MANIFEST} has format version {version!r}; format versions are whole numbers "
                          f"from 1 to {FORMAT_VERSION}", "re-create the bundle")
    if version > FORMAT_VERSION:
        raise BundleError(
            str(path), f"has format version {version!r}; this takeoff reads versions up to {FORMAT_VERSION}",
            "upgrade takeoff (pip install -U takeoff)",
        )
    _check_digest(path, manifest)
    checked = bundle_manifest.validate(path, manifest)
    for field, relative in checked.paths():
        bundle_manifest.confined(path, relative, field)
    _refuse_links_out(path)
    if verify:
        for name, expected in checked.files.items():
            file = path / name
            if not file.is_file():
                raise BundleError(str(path), f"file {name} is missing", "re-copy the whole bundle directory")
            if sha256(file) != expected:
                raise BundleError(
                    str(path), f"file {name} does not match its recorded sha256 (modified or corrupted)",
                    "re-copy the bundle, or re-train",
                )
    return manifest


def _check_digest(path: Path, manifest: dict[str, Any]) -> None:
    recorded = manifest.get("digest")
    if recorded is None:
        key = str(path.resolve())
        if key not in _warned_legacy:
            _warned_legacy.add(key)
            log.warning("bundle %s has no digest in %s (written by takeoff %s, before manifests were covered): a "
                        "change to its manifest cannot be detected. Sign it (`takeoff sign`) to cover it.",
                        path, MANIFEST, manifest.get("takeoff_version", "0.1"))
        return
    try:
        actual = bundle_manifest.digest(manifest)
    except (TypeError, ValueError, RecursionError):  # not canonical JSON: cannot match
        actual = None
    if recorded != actual:
        raise BundleError(
            str(path), f"{MANIFEST} was changed after it was written: its content does not match its digest "
            f"{str(recorded)[:20]}… (an edited class list, threshold or member weight changes every prediction)",
            "re-copy the bundle from its source, or re-train",
        )


def _refuse_links_out(path: Path) -> None:
    """A symbolic link anywhere in the bundle that points outside it is refused (a loader reads
    fixed file names inside a member's folder, which may not be listed in the manifest)."""
    root = path.resolve()
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            item = Path(folder) / name
            if item.is_symlink():
                try:
                    target = item.resolve()
                except (OSError, RuntimeError):  # a loop of links
                    raise BundleError(str(path), f"{item.relative_to(path).as_posix()} is a loop of symbolic links",
                                      "replace the link with the files themselves") from None
                if not target.is_relative_to(root):
                    raise BundleError(str(path), f"{item.relative_to(path).as_posix()} is a symbolic link to {target}, "
                                      "outside the bundle", "replace the link with the files themselves")
