"""Serving: a REST API over bundles (``takeoff serve``).

Example:
    >>> from takeoff.serving import ServeSettings, create_app, serve
    >>> app = create_app("runs/credit")                      # an ASGI app (FastAPI)
    >>> serve("runs/", ServeSettings(port=8000, workers=2))   # blocks; Ctrl-C or SIGTERM stops
"""

from __future__ import annotations

__all__ = ["ServeSettings", "create_app", "serve"]


def __getattr__(name: str):
    # Lazy, so that importing the package (e.g. for the settings) does not import FastAPI.
    if name == "ServeSettings":
        from takeoff.serving.settings import ServeSettings

        return ServeSettings
    if name == "create_app":
        from takeoff.serving.app import create_app

        return create_app
    if name == "serve":
        from takeoff.serving.server import serve

        return serve
    raise AttributeError(f"module 'takeoff.serving' has no attribute {name!r}")
