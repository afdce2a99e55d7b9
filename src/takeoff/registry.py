"""Model families and recommenders by name, found rather than listed.

Discovery imports every module of :mod:`takeoff.models` (their tops are light: heavy libraries
load inside methods) and keeps each concrete :class:`~takeoff.models.base.Family` and
:class:`~takeoff.models.recommender.Recommender` subclass that declares its own ``name``; it
adds the classes (or the modules' classes) that installed distributions announce under the
entry-point group ``takeoff.families``, so a plug-in package registers by being installed::

    # the plug-in's pyproject.toml
    [project.entry-points."takeoff.families"]
    toy = "toy_family:ToyFamily"

Adding a family is then one file in ``models/`` plus its test. What ``auto`` tries, and in which
order, is declared on the class (``auto_order``). Discovery runs once per process;
:func:`refresh` forgets it (after ``sys.path`` changed).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING

from takeoff.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from takeoff.models.base import Family
    from takeoff.models.recommender import Recommender

log = logging.getLogger("takeoff")

ENTRY_POINTS = "takeoff.families"


@dataclass(frozen=True)
class _Found:
    families: dict[str, type[Family]]
    recommenders: dict[str, type[Recommender]]


def names() -> list[str]:
    """Family names, in listing order (see :func:`takeoff.models.base.listing_order`)."""
    return list(_discover().families)


def recommender_names() -> list[str]:
    """Recommender names, in listing order."""
    return list(_discover().recommenders)


def get(name: str) -> type[Family]:
    """The family class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid names).
    """
    families = _discover().families
    if name not in families:
        raise UnknownNameError("model family", name, [*families, "auto"])
    return families[name]


def get_recommender(name: str) -> type[Recommender]:
    """The recommender class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid names).
    """
    recommenders = _discover().recommenders
    if name not in recommenders:
        raise UnknownNameError("recommender family", name, [*recommenders, "auto"])
    return recommenders[name]


def auto(images: bool = False) -> list[str]:
    """What ``auto`` tries, in order: the families with an ``auto_order`` that read images
    (``images=True``, for an image table) or that do not."""
    chosen = [c for c in _discover().families.values()
              if c.auto_order is not None and c.needs_images == images]
    return [c.name for c in sorted(chosen, key=lambda c: c.auto_order)]


def auto_recommenders() -> list[str]:
    """What ``auto`` tries for a recommendation task, in order."""
    chosen = [c for c in _discover().recommenders.values() if c.auto_order is not None]
    return [c.name for c in sorted(chosen, key=lambda c: c.auto_order)]


def capable(capability: str) -> list[str]:
    """Names of the families that declare ``capability`` (e.g. ``"exports_onnx"``)."""
    return [name for name, cls in _discover().families.items() if getattr(cls, capability, False)]


def refresh() -> None:
    """Forget what was discovered: the next call looks again (new modules, new plug-ins)."""
    _discover.cache_clear()


@lru_cache(maxsize=1)
def _discover() -> _Found:
    import takeoff.models as package
    from takeoff.models.base import Family, declared, listing_order
    from takeoff.models.recommender import Recommender

    classes: list[type] = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        classes += _classes(importlib.import_module(info.name))
    for point in entry_points(group=ENTRY_POINTS):
        try:
            found = point.load()
        except Exception as error:  # a broken plug-in must not stop takeoff
            log.warning("model family plug-in '%s' (%s) could not be imported, skipped: %s", point.name, point.value, error)
            continue
        classes += _classes(found) if isinstance(found, ModuleType) else [found]
    families: dict[str, type[Family]] = {}
    recommenders: dict[str, type[Recommender]] = {}
    for cls in classes:
        if not (inspect.isclass(cls) and declared(cls)):
            continue
        if issubclass(cls, Family):
            _add(families, cls, "model family")
        elif issubclass(cls, Recommender):
            _add(recommenders, cls, "recommender family")
    return _Found(dict(sorted(families.items(), key=lambda item: listing_order(item[1]))),
                  dict(sorted(recommenders.items(), key=lambda item: listing_order(item[1]))))


def _classes(module: ModuleType) -> list[type]:
    """The classes defined in ``module`` (not those it imports)."""
    return [v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__]


def _add(found: dict[str, type], cls: type, kind: str) -> None:
    other = found.get(cls.name)
    if other is not None and other is not cls:
        raise ConfigError(f"two {kind} classes are named '{cls.name}': {_path(other)} and {_path(cls)}. "
                          "Fix: rename one of them (its `name` attribute), or uninstall the plug-in that repeats it.")
    found[cls.name] = cls


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
