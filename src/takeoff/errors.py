"""One error hierarchy for takeoff.

Every class subclasses :class:`TakeoffError` and the builtin that matches its meaning, so
callers may catch either. Each carries the fields its message is built from, and each message
names the thing, the value received, what is allowed, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name`` (case-insensitive), or None when none is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def preview(values: Sequence[object], limit: int = 8) -> str:
    """Render a list for a message: ``a, b, c`` or ``a, b, c, ... (12 more)``."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown


class TakeoffError(Exception):
    """Base class of every error takeoff raises on purpose."""


class DataSourceError(TakeoffError, OSError):
    """A data source cannot be read: missing, empty, wrong format, bad encoding, bad URL."""

    def __init__(self, source: str, problem: str, fix: str | None = None):
        self.source, self.problem, self.fix = source, problem, fix
        message = f"{source}: {problem}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)

    def __str__(self) -> str:  # OSError would print its errno form otherwise
        return self.args[0]


class SourceNotFoundError(DataSourceError, FileNotFoundError):
    """The data file does not exist."""


class DataError(TakeoffError, ValueError):
    """The data was read but cannot be used as it is (a column, a value, a row)."""

    def __init__(self, message: str, column: str | None = None, rows: Sequence[int] = ()):
        self.column, self.rows = column, list(rows)
        super().__init__(message)


class ColumnNotFoundError(DataError, KeyError):
    """A named column is not in the data; lists what is there and suggests the closest."""

    def __init__(self, column: str, available: Sequence[str], where: str, role: str = "column"):
        self.available, self.where = list(available), where
        guess = closest(column, available)
        hint = f" Did you mean '{guess}'?" if guess else ""
        message = (
            f"{role} '{column}' not found in {where}; the columns are: "
            f"{preview(available, 30)}.{hint}"
        )
        super().__init__(message, column=column)

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class SchemaMismatchError(DataError):
    """Data given to a trained model lacks columns it was trained with."""

    def __init__(self, missing: Sequence[str], expected: Sequence[str], where: str,
                 available: Sequence[str] = ()):
        self.missing, self.expected = list(missing), list(expected)
        # the data's columns the model does not know: a missing one was probably renamed to one of them
        unused = [str(a) for a in available if a not in set(self.expected)]
        self.suggestions = {m: guess for m in self.missing if (guess := closest(m, unused)) is not None}
        hint = ""
        if self.suggestions:
            hint = " Did you mean " + ", ".join(f"'{g}' for '{m}'" for m, g in self.suggestions.items()) + "?"
        fix = ("rename " + ", ".join(f"'{g}' to '{m}'" for m, g in self.suggestions.items()) + ", and add any other "
               "missing column" if self.suggestions else "add the missing column(s)")
        message = (
            f"column(s) {preview([repr(m) for m in missing])} missing in {where}; the model was "
            f"trained with: {preview(expected, 40)}.{hint} Fix: {fix} "
            "(empty values are allowed and are imputed)."
        )
        super().__init__(message, column=missing[0] if missing else None)


class TargetError(DataError):
    """The target column cannot be learned from (constant, too few rows of a class, ...)."""


class ChecksFailedError(DataError):
    """Data checks found errors and strict mode is on."""

    def __init__(self, findings: Sequence[object]):
        self.findings = list(findings)
        lines = "\n".join(f"  - {f}" for f in findings)
        super().__init__(
            f"{len(findings)} data check(s) failed in strict mode:\n{lines}\n"
            "Fix: address each finding, or run without --strict to continue with warnings."
        )


class ConfigError(TakeoffError, ValueError):
    """A configuration file or option is invalid."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(message)


class UnknownNameError(ConfigError, KeyError):
    """An unknown name (model family, task, metric) was given; lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: Sequence[str]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        guess = closest(name, valid)
        hint = f" Did you mean '{guess}'?" if guess else ""
        super().__init__(f"unknown {kind} '{name}'; valid: {', '.join(valid)}.{hint}")

    def __str__(self) -> str:
        return self.args[0]


class BundleError(TakeoffError, ValueError):
    """A model bundle is missing, unfinished, tampered with, or of an unknown format."""

    def __init__(self, path: str, problem: str, fix: str | None = None):
        self.path, self.problem, self.fix = path, problem, fix
        message = f"bundle {path}: {problem}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)


class BudgetError(TakeoffError, RuntimeError):
    """The time budget was too small to fit any model."""


class TrainingError(TakeoffError, RuntimeError):
    """No model of a run could be trained; ``failures`` holds each candidate's reason."""

    def __init__(self, message: str, failures: Sequence[dict] = ()):
        self.failures = list(failures)
        super().__init__(message)


class ExportError(TakeoffError, ValueError):
    """An ONNX export that does not predict what its bundle predicts (refused, nothing written)."""

    def __init__(self, message: str, difference: float | None = None, tolerance: float | None = None):
        self.difference, self.tolerance = difference, tolerance
        super().__init__(message)


class MissingDependencyError(TakeoffError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        self.package, self.feature, self.extra = package, feature, extra
        install = f"pip install 'takeoff[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}'. Fix: {install}")


class DistributedError(TakeoffError, RuntimeError):
    """A process of a distributed run failed or was killed; the launcher stopped the others."""

    def __init__(self, rank: int, world: int, how: str, cause: str | None = None, pid: int | None = None,
                 killed: bool = False):
        self.rank, self.world, self.how, self.cause, self.pid, self.killed = rank, world, how, cause, pid, killed
        who = f"rank {rank} of {world}" + (f" (pid {pid})" if pid else "")
        message = f"distributed training failed: {who} {how}"
        if cause:
            message += f": {cause}"
        message += "; the launcher stopped the other ranks. Fix: "
        message += ("find what killed it (out of memory, a scheduler, kill); the run continues from its last epoch with "
                    "`takeoff train --resume DIR`" if killed else f"correct what rank {rank} reports and train again")
        super().__init__(message)
