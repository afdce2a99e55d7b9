"""A strict check of LightGBM's text model format, run before LightGBM parses a model file.

LightGBM's own parser trusts its input: it reads each tree at the byte offsets that the
``tree_sizes`` header gives, in OpenMP threads, so a truncated file whose sizes run past its
end is read out of bounds (the process dies of SIGSEGV), a garbled number inside a tree is a
fatal error thrown across a thread (the process aborts), and a child index or feature index out
of range is followed at predict time. None of these can be caught from Python, so a model file
is checked here first, in Python, against what LightGBM will do with it: every header key it
needs, ``tree_sizes`` matching the text byte for byte, every tree's fields present with the
right number of well-formed numbers, feature indices within the header's feature count,
categorical splits within their bitsets, and children that form one tree (no node reached
twice, no loop). A file that passes is one LightGBM reads without crashing, and predicts from
without reading out of bounds.
"""

from __future__ import annotations

import re

from takeoff.errors import BundleError

# the numbers as LightGBM writes them ("%.17g": 0.5, -3, 1.0000000180025095e-35, inf, nan), and
# nothing else: a token its parser might read differently is refused, not guessed at
_INT = rb"-?[0-9]+"
_FLOAT = rb"-?(?:[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?|inf|nan)"
_OBJECTIVE = re.compile(rb"[a-z_]+(?: [a-z_]+:%s)*" % _FLOAT)
_INTS = re.compile(rb"(?:%s)(?: (?:%s))*" % (_INT, _INT))
_FLOATS = re.compile(rb"(?:%s)(?: (?:%s))*" % (_FLOAT, _FLOAT))
HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "feature_names", "tree_sizes")
MAX_LEAVES = 131072  # LightGBM's own limit on num_leaves
MAX_FEATURES = 10_000_000
# per tree: field → (numbers, count: "leaves", "splits", "cats", "bounds", "one")
_TREE_FIELDS = {
    "num_leaves": ("int", "one"), "num_cat": ("int", "one"), "is_linear": ("int", "one"), "shrinkage": ("float", "one"),
    "split_feature": ("int", "splits"), "split_gain": ("float", "splits"), "threshold": ("float", "splits"),
    "decision_type": ("int", "splits"), "left_child": ("int", "splits"), "right_child": ("int", "splits"),
    "internal_value": ("float", "splits"), "internal_weight": ("float", "splits"), "internal_count": ("int", "splits"),
    "leaf_value": ("float", "leaves"), "leaf_weight": ("float", "leaves"), "leaf_count": ("int", "leaves"),
    "cat_boundaries": ("int", "bounds"), "cat_threshold": ("int", "cats"),
}
_REQUIRED = ("num_leaves", "num_cat", "leaf_value")
_REQUIRED_SPLITS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


class _Invalid(Exception):
    pass


def check_model_text(data: bytes, where: str) -> dict[str, int]:
    """Check a LightGBM text model (``data``, the file's bytes) before LightGBM reads it.

    Returns:
        the header's counts: ``num_class``, ``num_tree_per_iteration``, ``max_feature_idx``,
        ``trees``.

    Raises:
        BundleError: the file is not a well-formed LightGBM text model; the message says where.
    """
    try:
        return _check(data)
    except _Invalid as error:
        raise BundleError(where, f"is not a well-formed LightGBM model ({error})",
                          "re-copy the bundle from its source, or re-train") from None


def _check(data: bytes) -> dict[str, int]:
    if b"\x00" in data:
        raise _Invalid("it holds NUL bytes")
    end = data.find(b"\nend of trees") + 1  # bytes.find: a regex over megabytes of trees is slow
    if end == 0 or data[end + 12:end + 13] not in (b"\n", b"\r"):
        raise _Invalid("no 'end of trees' line: the file is truncated")
    first = data.find(b"\nTree=") + 1
    start = first if 0 < first < end else end
    header = _header(data[:start])
    sizes = header.pop("tree_sizes")
    position = start
    for i, size in enumerate(sizes):
        block = data[position:position + size]
        if len(block) < size:
            raise _Invalid(f"tree {i} is {size} bytes by tree_sizes but the file ends {len(block)} bytes after its start")
        _tree(block, i, header["max_feature_idx"])
        position += size
    rest = data[position:end]
    if rest.strip(b"\r\n"):
        raise _Invalid(f"{len(rest)} bytes after the last tree that tree_sizes does not account for")
    _trailer(data[end:])
    if header["trees"] % header["num_tree_per_iteration"]:
        raise _Invalid(f"{header['trees']} trees is not a whole number of iterations of {header['num_tree_per_iteration']}")
    return header


_PARAMETER = re.compile(rb"\[[a-z0-9_]+: [\x20-\x7e]*\]")  # printable ASCII ([0,1],[2,3] for interaction_constraints)
_IMPORTANCE = re.compile(rb"[^=]+=[0-9]+")


def _trailer(text: bytes) -> None:
    """What follows the trees: feature importances (``name=count``), the training parameters
    (``[key: value]`` lines, which LightGBM splits at ``:`` without checking: a line without one
    is read out of bounds), and pandas' categories (JSON, read by LightGBM's Python side)."""
    lines = text.split(b"\n")
    if lines[0].rstrip(b"\r") != b"end of trees":
        raise _Invalid("the trees do not end with 'end of trees'")
    section = None
    for number, raw in enumerate(lines[1:], 1):
        line = raw.rstrip(b"\r")
        if section == "parameters":
            if line == b"end of parameters":
                section = None
            elif line and not _PARAMETER.fullmatch(line):
                raise _Invalid(f"parameter line {line[:60]!r} is not '[key: value]'")
        elif line in (b"feature_importances:", b"parameters:"):
            section = line[:-1].decode()
        elif not line:
            section = None
        elif line.startswith(b"pandas_categorical:") and section is None:
            if any(rest.strip() for rest in lines[number + 1:]):
                raise _Invalid("text after the pandas_categorical line")
            return
        elif section != "feature_importances" or not _IMPORTANCE.fullmatch(line):
            raise _Invalid(f"unexpected line after the trees: {line[:60]!r}")
    if section == "parameters":
        raise _Invalid("the parameters do not end with 'end of parameters'")


def _header(text: bytes) -> dict:
    lines = text.splitlines()
    if not lines or lines[0].strip() != b"tree":
        raise _Invalid("the first line is not 'tree'")
    values: dict[bytes, bytes] = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        if line.strip() == b"average_output":  # random-forest mode: a flag without a value
            continue
        if line.count(b"=") != 1:  # LightGBM's fatal "Wrong line at model file"
            raise _Invalid(f"header line {number} is not key=value: {line[:60]!r}")
        key, value = line.split(b"=")
        values[key] = value
    objective = values.get(b"objective")
    if objective is not None and not _OBJECTIVE.fullmatch(objective):
        raise _Invalid(f"objective={objective[:60]!r} is not 'name key:number ...'")
    missing = [k for k in HEADER_KEYS if k.encode() not in values]
    if missing:
        raise _Invalid(f"the header has no {', '.join(missing)}")
    out = {k: _one_int(values[k.encode()], k) for k in ("num_class", "num_tree_per_iteration", "label_index", "max_feature_idx")}
    if not 1 <= out["num_class"] <= 100_000 or not 1 <= out["num_tree_per_iteration"] <= 100_000:
        raise _Invalid(f"num_class {out['num_class']} / num_tree_per_iteration {out['num_tree_per_iteration']} out of range")
    if not 0 <= out["max_feature_idx"] < MAX_FEATURES or out["label_index"] < 0:
        raise _Invalid(f"max_feature_idx {out['max_feature_idx']} or label_index {out['label_index']} out of range")
    n_features = out["max_feature_idx"] + 1
    for key in (b"feature_names", b"feature_infos"):
        if key in values and len(values[key].split(b" ")) != n_features:
            raise _Invalid(f"{key.decode()} lists {len(values[key].split(b' '))} features, max_feature_idx says {n_features}")
    sizes_text = values[b"tree_sizes"].strip()
    if sizes_text and not _INTS.fullmatch(sizes_text):
        raise _Invalid("tree_sizes is not a list of whole numbers")
    sizes = [int(s) for s in sizes_text.split()] if sizes_text else []
    if any(s < 8 for s in sizes):
        raise _Invalid("tree_sizes holds a size too small for a tree")
    out["tree_sizes"], out["trees"] = sizes, len(sizes)
    return out


def _one_int(value: bytes, key: str) -> int:
    if not re.fullmatch(_INT, value.strip()):
        raise _Invalid(f"{key}={value[:40]!r} is not a whole number")
    return int(value)


def _tree(block: bytes, i: int, max_feature: int) -> None:
    first, _, body = block.partition(b"\n")
    if first.rstrip(b"\r") != b"Tree=%d" % i:
        raise _Invalid(f"tree {i} does not start where tree_sizes puts it (found {first[:40]!r})")
    lines = body.split(b"\n")
    fields: dict[str, bytes] = {}
    for n, raw in enumerate(lines):
        line = raw.rstrip(b"\r")
        if not line:  # LightGBM stops at the first empty line: nothing but blank lines may follow
            if any(rest.strip() for rest in lines[n:]):
                raise _Invalid(f"tree {i} has text after its blank line")
            break
        key, equals, value = line.partition(b"=")
        name = key.decode("ascii", "replace")
        if not equals or name not in _TREE_FIELDS:
            raise _Invalid(f"tree {i} has an unknown line {line[:40]!r}")
        if name in fields:
            raise _Invalid(f"tree {i} repeats {name}")
        fields[name] = value
    else:
        raise _Invalid(f"tree {i} does not end with a blank line")
    if len(fields) > 22:  # LightGBM reads at most 22 lines of a tree
        raise _Invalid(f"tree {i} has {len(fields)} fields")
    for name in _REQUIRED:
        if name not in fields:
            raise _Invalid(f"tree {i} has no {name}")
    leaves, cats = _one_int(fields["num_leaves"], "num_leaves"), _one_int(fields["num_cat"], "num_cat")
    if not 1 <= leaves <= MAX_LEAVES or not 0 <= cats < max(leaves, 1):
        raise _Invalid(f"tree {i}: num_leaves {leaves} / num_cat {cats} out of range")
    if "is_linear" in fields and _one_int(fields["is_linear"], "is_linear") != 0:
        raise _Invalid(f"tree {i} is a linear tree, which takeoff does not write")
    counts = {"one": 1, "leaves": leaves, "splits": leaves - 1, "bounds": cats + 1}
    if leaves > 1:
        for name in _REQUIRED_SPLITS:
            if name not in fields:
                raise _Invalid(f"tree {i} has no {name}")
    if cats and ("cat_boundaries" not in fields or "cat_threshold" not in fields):
        raise _Invalid(f"tree {i} has {cats} categorical splits but no cat_boundaries/cat_threshold")
    ints: dict[str, list[int]] = {}
    for name, value in fields.items():
        kind, count = _TREE_FIELDS[name]
        if count == "cats":
            continue  # after cat_boundaries
        if leaves == 1 and count == "splits" or cats == 0 and count == "bounds":
            continue  # LightGBM does not read them
        _numbers(value, kind, counts[count], i, name)
        if name in ("split_feature", "decision_type", "left_child", "right_child", "cat_boundaries"):
            ints[name] = [int(v) for v in value.split(b" ")]
    if leaves == 1:
        return
    if any(not 0 <= f <= max_feature for f in ints["split_feature"]):
        raise _Invalid(f"tree {i} splits on a feature past max_feature_idx {max_feature}")
    if any(not 0 <= d <= 255 or (d >> 2) & 3 == 3 for d in ints["decision_type"]):
        raise _Invalid(f"tree {i} has a decision_type out of range")
    if cats:
        bounds = ints["cat_boundaries"]
        if bounds[0] != 0 or any(b > a for a, b in zip(bounds[1:], bounds)) or bounds[-1] > 1_000_000:
            raise _Invalid(f"tree {i}: cat_boundaries {bounds[:5]}... is not an increasing list from 0")
        _numbers(fields["cat_threshold"], "int", bounds[-1], i, "cat_threshold")
        if any(not 0 <= int(v) < 2**32 for v in fields["cat_threshold"].split(b" ") if v):
            raise _Invalid(f"tree {i}: cat_threshold holds a value outside 32 bits")
        thresholds = fields["threshold"].split(b" ")
        for node, d in enumerate(ints["decision_type"]):
            if d & 1:  # a categorical split: its threshold is an index into cat_boundaries
                index = float(thresholds[node])
                if not (index.is_integer() and 0 <= index < cats):
                    raise _Invalid(f"tree {i}: categorical split {node} points to bitset {thresholds[node]!r} of {cats}")
    _one_tree(ints["left_child"], ints["right_child"], leaves, i)


def _numbers(value: bytes, kind: str, count: int, i: int, name: str) -> None:
    pattern = _INTS if kind == "int" else _FLOATS
    if count == 0:
        if value.strip():
            raise _Invalid(f"tree {i}: {name} should be empty")
        return
    if not pattern.fullmatch(value):
        raise _Invalid(f"tree {i}: {name} is not a list of {'whole ' if kind == 'int' else ''}numbers")
    if value.count(b" ") + 1 != count:
        raise _Invalid(f"tree {i}: {name} has {value.count(b' ') + 1} values, expected {count}")


def _one_tree(left: list[int], right: list[int], leaves: int, i: int) -> None:
    """The children form one binary tree rooted at node 0: every split and leaf reached once."""
    splits = leaves - 1
    seen_nodes, seen_leaves = [False] * splits, [False] * leaves
    stack = [0]
    seen_nodes[0] = True
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child >= splits or seen_nodes[child]:
                    raise _Invalid(f"tree {i}: split {node} has child {child}, out of range or reached twice")
                seen_nodes[child] = True
                stack.append(child)
            else:
                leaf = ~child
                if leaf >= leaves or seen_leaves[leaf]:
                    raise _Invalid(f"tree {i}: split {node} has leaf {leaf}, out of range or reached twice")
                seen_leaves[leaf] = True
    if not all(seen_nodes) or not all(seen_leaves):
        raise _Invalid(f"tree {i}: some splits or leaves are not reachable from the root")
