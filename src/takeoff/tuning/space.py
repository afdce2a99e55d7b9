"""Families' declared search spaces (``Family.search_space``) as Optuna distributions.

A declaration maps a ``Params`` field to ``{"low": a, "high": b}`` (an int range when both
bounds are ints, else a float range; ``"log": True`` samples on a log scale) or to
``{"choices": [...]}``. Choices that are not plain values (e.g. the MLP's layer widths, lists)
reach Optuna as their JSON text and come back decoded.
"""

from __future__ import annotations

import json
from typing import Any

from takeoff import registry
from takeoff.errors import ConfigError

PLAIN = (str, int, float, bool, type(None))


def declared_space(family: str) -> dict[str, dict[str, Any]]:
    """The search space ``family`` declares, checked against its ``Params``.

    Raises:
        UnknownNameError: no such family.
        ConfigError: the family declares no space, or a name that is not one of its params, or
            a value its params refuse.
    """
    cls = registry.get(family)
    space = dict(cls.search_space)
    if not space:
        tunable = ", ".join(tunable_families()) or "none"
        raise ConfigError(f"model family '{family}' declares no search space; families that do: {tunable}. "
                          "Fix: tune one of those (--family), or declare `search_space` next to its Params.")
    fields = cls.Params.model_fields
    for name, spec in space.items():
        if name not in fields:
            raise ConfigError(f"{family}.search_space names '{name}', which is not one of its params "
                              f"({', '.join(fields)})")
        ends = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
        for value in ends:
            try:
                cls.Params(**{name: value})
            except Exception as exc:
                raise ConfigError(f"{family}.search_space: {name}={value!r} is refused by its Params: {exc}") from None
    return space


def tunable_families() -> list[str]:
    """Names of the installed families that declare a search space."""
    return [n for n in registry.names() if registry.get(n).search_space]


def distributions(family: str, prefix: bool) -> dict[str, Any]:
    """Optuna distributions of ``family``'s space, named ``<family>.<param>`` with ``prefix``."""
    import optuna.distributions as d

    out = {}
    for name, spec in declared_space(family).items():
        key = f"{family}.{name}" if prefix else name
        if "choices" in spec:
            out[key] = d.CategoricalDistribution([_encode(c) for c in spec["choices"]])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not isinstance(spec["low"], bool):
            out[key] = d.IntDistribution(spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            out[key] = d.FloatDistribution(float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return out


def suggest(trial, family: str, prefix: bool) -> dict[str, Any]:
    """The params ``trial`` proposes for ``family`` (decoded, without the prefix)."""
    import optuna.distributions as d

    params = {}
    for key, dist in distributions(family, prefix).items():
        if isinstance(dist, d.CategoricalDistribution):
            value = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, d.IntDistribution):
            value = trial.suggest_int(key, dist.low, dist.high, log=dist.log)
        else:
            value = trial.suggest_float(key, dist.low, dist.high, log=dist.log)
        params[key.split(".", 1)[1] if prefix else key] = decode(value)
    return params


def params_of(values: dict[str, Any], family: str) -> dict[str, Any]:
    """A finished trial's params for ``family``: its prefixed or plain keys, decoded."""
    out = {}
    for key, value in values.items():
        if key == "family":
            continue
        name = key.split(".", 1)[1] if key.startswith(f"{family}.") else key
        if "." not in key or key.startswith(f"{family}."):
            out[name] = decode(value)
    return out


def describe(family: str) -> list[dict[str, Any]]:
    """One row per searched param (for ``takeoff config show --space``): name, type, range or
    choices, scale, default and description."""
    cls = registry.get(family)
    rows = []
    for name, spec in declared_space(family).items():
        field = cls.Params.model_fields[name]
        if "choices" in spec:
            kind, values = "choice", spec["choices"]
        else:
            kind = "int" if isinstance(spec["low"], int) and isinstance(spec["high"], int) else "float"
            values = [spec["low"], spec["high"]]
        rows.append({"param": name, "type": kind, "values": values, "log": bool(spec.get("log")),
                     "default": field.default, "description": field.description or ""})
    return rows


def _encode(value: Any) -> Any:
    return value if isinstance(value, PLAIN) else json.dumps(value)


def decode(value: Any) -> Any:
    """A value as Optuna stored it, back as the family's param (JSON text of a list → list)."""
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value
