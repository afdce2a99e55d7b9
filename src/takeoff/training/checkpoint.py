"""Save and restore a whole training state without pickle.

A state is a nested structure of dicts, lists, tuples, numbers, strings and tensors (a model's
and an optimizer's ``state_dict``, a scheduler's, the epoch, histories, best weights, RNG
states). :func:`save_state` splits it in two files in one folder:

* ``state-<token>.safetensors``: every tensor (and NumPy array), keyed by its dotted path;
* ``state.json``: everything else, with each tensor replaced by a reference to its key, and the
  name of the tensor file.

The JSON file is written last and is the commit marker: the tensor file's name is unique per
save, so a crash at any point leaves ``state.json`` pointing at the complete tensors it was
written with. Old tensor files are deleted only after the new JSON is in place.

Dict keys keep their type (an optimizer's ``state`` is keyed by ints), tuples come back as
tuples, and floats that JSON cannot hold (nan, inf) survive.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from takeoff.errors import DataSourceError

FORMAT = "takeoff-checkpoint"
VERSION = 1
STATE_FILE = "state.json"
_TENSOR_PREFIX = "state-"
_TENSOR_SUFFIX = ".safetensors"
_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__items__", "__float__")


def save_state(path_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` into ``path_dir`` atomically (created if missing).

    Args:
        path_dir: the checkpoint folder; holds one state at a time.
        state: a nested dict; leaves are tensors, NumPy arrays or scalars, None, strings.

    Raises:
        TypeError: a leaf of another type (names its path), e.g. a function or an object.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> save_state(folder, {"epoch": 3, "w": torch.ones(2)})
        >>> load_state(folder)["epoch"]
        3
    """
    from safetensors.torch import save_file

    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, "", tensors)
    token = secrets.token_hex(6)
    tensor_name = f"{_TENSOR_PREFIX}{token}{_TENSOR_SUFFIX}"
    tensor_tmp = path_dir / f".{tensor_name}.tmp"
    json_tmp = path_dir / f".{STATE_FILE}.{token}.tmp"
    try:
        save_file(tensors, str(tensor_tmp), metadata={"format": "pt"})
        _fsync_file(tensor_tmp)
        os.replace(tensor_tmp, path_dir / tensor_name)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "tensors": tensor_name,
            "tensor_bytes": (path_dir / tensor_name).stat().st_size,
            "state": skeleton,
        }
        with open(json_tmp, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, allow_nan=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(json_tmp, path_dir / STATE_FILE)  # the commit point
        _fsync_dir(path_dir)
    except BaseException:
        for leftover in (tensor_tmp, json_tmp):
            leftover.unlink(missing_ok=True)
        # a tensor file that never got its JSON is unreferenced: drop it (never the live one)
        if _referenced(path_dir) != tensor_name:
            (path_dir / tensor_name).unlink(missing_ok=True)
        raise
    for old in path_dir.glob(f"{_TENSOR_PREFIX}*{_TENSOR_SUFFIX}"):
        if old.name != tensor_name:
            old.unlink(missing_ok=True)
    for stale in path_dir.glob(".*.tmp"):  # from a process killed mid-save
        stale.unlink(missing_ok=True)


def load_state(path_dir: Path) -> dict[str, Any] | None:
    """Read the state last written by :func:`save_state`, or None when there is none.

    Tensors come back on the CPU (``load_state_dict`` moves them where they belong).

    Raises:
        DataSourceError: the folder holds a checkpoint that cannot be read (names the file
            and suggests deleting the folder to start over).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path_dir = Path(path_dir)
    manifest_path = path_dir / STATE_FILE
    if not manifest_path.is_file():
        return None
    fix = f"delete the folder {path_dir} to start training from scratch"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataSourceError(str(manifest_path), f"checkpoint is not readable JSON ({error})", fix)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataSourceError(str(manifest_path), "not a takeoff checkpoint", fix)
    if manifest.get("version") != VERSION:
        raise DataSourceError(
            str(manifest_path),
            f"checkpoint version {manifest.get('version')!r} is not supported (this takeoff "
            f"reads version {VERSION})",
            fix,
        )
    tensor_path = path_dir / str(manifest["tensors"])
    if tensor_path.parent != path_dir or not tensor_path.is_file():
        raise DataSourceError(str(tensor_path), "the checkpoint's tensor file is missing", fix)
    if tensor_path.stat().st_size != manifest.get("tensor_bytes"):
        raise DataSourceError(str(tensor_path), "the checkpoint's tensor file is truncated", fix)
    try:
        tensors = load_file(str(tensor_path), device="cpu")
    except (OSError, SafetensorError) as error:
        raise DataSourceError(str(tensor_path), f"cannot read the checkpoint's tensors ({error})", fix)
    try:
        return _decode(manifest["state"], tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise DataSourceError(str(manifest_path), f"checkpoint is inconsistent ({error!r})", fix)


@contextlib.contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt.

    Used around the end of an epoch so that an interrupt never leaves it half-recorded. Only
    acts in the main thread and when Python's default SIGINT handler is installed.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


# ----------------------------------------------------------------------------- encoding
def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return _encode(value.item(), path, tensors)
    if isinstance(value, torch.Tensor):
        key = _tensor_key(path, tensors)
        # contiguous CPU copy: safetensors refuses shared or strided storage
        tensors[key] = value.detach().cpu().clone(memory_format=torch.contiguous_format)
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"checkpoint state at '{path}': object arrays cannot be saved")
        key = _tensor_key(path, tensors)
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__ndarray__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        plain = all(isinstance(k, str) for k in value) and not any(k in _MARKERS for k in value)
        if plain:
            return {k: _encode(v, _join(path, k), tensors) for k, v in value.items()}
        items = []
        for k, v in value.items():
            if isinstance(k, (torch.Tensor, np.ndarray)):
                raise TypeError(f"checkpoint state at '{path or '<root>'}' has a tensor as a dict key")
            items.append([_encode(k, f"{path}.key", tensors), _encode(v, _join(path, str(k)), tensors)])
        return {"__items__": items}
    raise TypeError(
        f"checkpoint state at '{path or '<root>'}' is a {type(value).__name__}; only tensors, "
        "arrays, numbers, strings, None, lists, tuples and dicts can be saved"
    )


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (marker, inner), = value.items()
        if marker == "__tensor__":
            return tensors[inner]
        if marker == "__ndarray__":
            return tensors[inner].numpy()
        if marker == "__tuple__":
            return tuple(_decode(v, tensors) for v in inner)
        if marker == "__items__":
            return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in inner}
        if marker == "__float__":
            return float(inner)
    return {k: _decode(v, tensors) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _tensor_key(path: str, tensors: dict[str, torch.Tensor]) -> str:
    key, n = path or "<root>", 1
    while key in tensors:  # a dotted name that is also a nested path: keep both
        key, n = f"{path}#{n}", n + 1
    return key


def _referenced(path_dir: Path) -> str | None:
    try:
        return json.loads((path_dir / STATE_FILE).read_text(encoding="utf-8")).get("tensors")
    except (OSError, ValueError, AttributeError):
        return None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
