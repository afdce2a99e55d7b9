"""Checks that send a user to the right command for the kind of bundle given."""

from __future__ import annotations

from pathlib import Path

from takeoff.cli.output import fail, run


def is_recommender(model) -> bool:
    return model.manifest.get("task", {}).get("kind") == "recommend"


def refuse_search_index(bundle: Path, command: str) -> None:
    """`evaluate` and `predict` on a search index: exit 2 pointing to `takeoff search` (read from
    the manifest alone, before loading the encoder)."""
    from takeoff.bundle import MANIFEST, read_manifest

    if not (Path(bundle) / MANIFEST).is_file():
        return  # not a bundle: loading it says why
    if run(read_manifest, bundle, verify=False).get("task", {}).get("kind") == "search":
        fail(f"{bundle} is a search index, which finds the texts closest to a query; it has nothing to {command}. "
             f'Fix: use `takeoff search {bundle} "a question"` (or POST /v1/models/NAME/search under `takeoff serve`).')
