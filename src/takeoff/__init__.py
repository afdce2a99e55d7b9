"""takeoff: from raw data to a trained, evaluated, deployable model in a few commands."""

from takeoff._version import __version__

__all__ = ["Model", "__version__", "inspect", "load", "train", "tune"]


def __getattr__(name: str):
    # The façade imports pandas and the layers; keep `import takeoff` itself instant.
    if name in ("Model", "inspect", "load", "train", "tune"):
        from takeoff import api

        return getattr(api, name)
    raise AttributeError(f"module 'takeoff' has no attribute {name!r}")
