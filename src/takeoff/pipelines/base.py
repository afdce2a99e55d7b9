"""What every pipeline's model is: a :class:`Predictor` over one bundle directory.

A predictor holds its manifest (the bundle's ``takeoff.json``), knows its task, its version
(a short content hash of the manifest, computed here only) and its attachments (the HTML
report), and saves itself through :func:`takeoff.bundle.write`: a subclass writes its own
files in :meth:`Predictor.write_files`; the manifest, the hashes, the attachments and the
atomic rename are done once, here. :meth:`Predictor.load` takes the manifest already read
(``takeoff.load`` reads it once and dispatches on its task).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from takeoff import bundle
from takeoff.errors import DataError

REPORT = "report.html"


def manifest_version(manifest: dict[str, Any]) -> str:
    """The short content hash of a manifest (which lists every file's hash): 12 hex digits,
    the start of its recorded ``digest`` (a manifest without one: of its JSON text)."""
    digest = manifest.get("digest")
    if isinstance(digest, str) and digest.startswith("sha256:"):
        return digest[len("sha256:"):][:12]
    text = json.dumps(manifest, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_k(k: Any) -> int:
    """``k`` (how many answers: items, hits) as an int, checked at the boundary.

    Raises:
        DataError: ``k`` is not a whole number of at least 1.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a whole number of at least 1, got {k!r}")
    return int(k)


class Predictor:
    """The model of a pipeline, as a bundle on disk sees it.

    Attributes:
        manifest: the bundle's manifest (as written, or as a load read it).
        path: the bundle directory once saved or loaded, else None.
        kind: the pipeline's name ("predict", "recommend", "search"), a class attribute.
    """

    kind: ClassVar[str] = ""

    def __init__(self, manifest: dict[str, Any]):
        self.manifest = manifest
        self.path: Path | None = None
        self._attachments: dict[str, Path] = {}

    # ------------------------------------------------------------------ facts
    @functools.cached_property
    def task(self):
        """The :class:`~takeoff.data.schema.Task` of the manifest."""
        from takeoff.data.schema import Task

        return Task.from_json(self.manifest["task"])

    @property
    def metrics(self) -> dict[str, Any]:
        """Metrics measured when the model was made (validation), empty when none were."""
        return self.manifest.get("metrics", {})

    @functools.cached_property
    def version(self) -> str:
        """A short content hash of the manifest (which lists every file's hash)."""
        return manifest_version(self.manifest)

    @property
    def attachments(self) -> dict[str, Path]:
        """Files saved with the bundle beside the model (``report.html``): name → where it is now."""
        return dict(self._attachments)

    def attach(self, name: str, source: Path) -> None:
        """Save the file ``source`` as ``name`` in the bundle with the model."""
        self._attachments[name] = Path(source)

    # ------------------------------------------------------------------ bundle
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        """Write the model's own files into ``directory`` (a fresh temporary bundle directory);
        ``manifest`` is the one about to be written, which a subclass may complete."""
        raise NotImplementedError

    def saved(self, path: Path) -> None:
        """Called once the bundle is in place at ``path`` (a subclass repoints its files)."""

    def save(self, path: str | Path) -> Path:
        """Write the model as a bundle directory (atomically: complete, or not at all)."""
        manifest = bundle.manifest_content(self.manifest)

        def fill(tmp: Path) -> None:
            self.write_files(tmp, manifest)
            for name, source in self._attachments.items():
                shutil.copyfile(source, tmp / name)

        self.path = bundle.write(path, manifest, fill)
        self.manifest = bundle.read_manifest(self.path, verify=False)  # as a load would see it
        self.__dict__.pop("version", None)  # the cached hash was of the manifest before saving
        self._attachments = {n: self.path / n for n in self._attachments}
        self.saved(self.path)
        return self.path

    @classmethod
    def load(cls, path: str | Path, manifest: dict[str, Any] | None = None) -> Predictor:
        """The model of the bundle at ``path``; ``manifest`` is its manifest when already read
        (and checked), else it is read here.

        Raises:
            BundleError: missing, unfinished, tampered with, or of an unknown format version.
        """
        path = Path(path)
        model = cls.from_bundle(path, manifest if manifest is not None else bundle.read_manifest(path))
        model.path = path
        model._attachments = {n: path / n for n in (REPORT,) if (path / n).exists()}
        return model

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> Predictor:
        """Build the model from the files of the bundle at ``path`` (its manifest read)."""
        raise NotImplementedError
