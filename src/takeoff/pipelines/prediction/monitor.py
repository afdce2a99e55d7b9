"""``takeoff monitor``: how far new data (and the model's predictions on it) drifted from the
training profile saved in the bundle; a JSON-ready result and an HTML report.

Example:
    >>> result = monitor("runs/credit", "march.csv", report="drift.html")
    >>> result["drifted"]
    ['Income']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from takeoff.data.profile import compare
from takeoff.errors import BundleError
from takeoff.pipelines.prediction.model import Model
from takeoff.pipelines.run_dir import read_data


def monitor(bundle_path: str | Path, data, *, report: str | Path | None = None, table: str | None = None,
            sql: str | None = None, encoding: str | None = None,
            thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Compare ``data`` with the training profile of the bundle at ``bundle_path``.

    Args:
        bundle_path: a prediction bundle written by ``takeoff train``.
        data: the new rows (a path, a SQLAlchemy URL with ``table``/``sql``, or a DataFrame);
            the target column is not needed.
        report: where to write the HTML drift report (optional).
        thresholds: overrides of :data:`takeoff.data.profile.THRESHOLDS` (psi, missing, new_categories).

    Returns:
        :func:`takeoff.data.profile.compare`'s result, with ``bundle`` and ``source``.

    Raises:
        BundleError: not a prediction bundle, or one without a training profile (older takeoff).
    """
    from takeoff.bundle import read_manifest
    from takeoff.pipelines.dispatch import load

    manifest = read_manifest(bundle_path)  # checked before the model's libraries are loaded
    kind = manifest.get("task", {}).get("kind")
    if kind in ("recommend", "search"):
        raise BundleError(str(bundle_path), f"is a {kind} bundle; takeoff monitor compares the inputs of table, "
                          "text and image prediction models")
    profile = manifest.get("profile")
    if not profile:
        source = manifest.get("training", {}).get("source", "")
        source = source if Path(source).suffix else "DATA"  # a file it was trained from, else a placeholder
        target = manifest.get("task", {}).get("target", "COLUMN")
        raise BundleError(str(bundle_path), "has no training profile: it was written by a takeoff that did not keep one",
                          f"retrain it with this takeoff (takeoff train {source} --target {target} ...); "
                          "the profile of the training rows is saved in every new bundle")
    model = load(bundle_path)
    if not isinstance(model, Model):
        raise BundleError(str(bundle_path), "is not a prediction bundle; takeoff monitor compares the inputs of "
                          "table, text and image prediction models")
    df, name = read_data(data, table, sql, encoding)
    seen: list[Any] = []
    model.monitor = seen.append  # the rows as the model sees them: conformed, redacted
    try:
        features, _ = model.features(df, where=name)
    finally:
        model.monitor = None
    predictions = model.decide(model.predict_features(features))
    result = {"bundle": str(bundle_path), "source": name, **compare(profile, seen[0], predictions, thresholds)}
    if report is not None:
        write_drift_report(report, result, model)
    return result


def write_drift_report(path: str | Path, result: dict[str, Any], model: Model) -> Path:
    """The drift result as one self-contained HTML page."""
    from takeoff.evaluation.html import generated, render, write_page

    def number(value):
        return "—" if value is None else f"{value:.3f}"

    columns = [{
        "column": c["column"], "kind": c["kind"], "psi": number(c.get("psi")), "ks": number(c.get("ks")),
        "missing": f"{c['missing_train']:.1%} → {c['missing_new']:.1%}" if c.get("missing_new") is not None else "—",
        "out_of_range": f"{c['out_of_range']:.1%}" if "out_of_range" in c else "—",
        "new": ", ".join(c.get("new_categories", [])) or "—", "drifted": c["drifted"], "reasons": "; ".join(c["reasons"]),
    } for c in sorted(result["columns"], key=lambda c: (not c["drifted"], -(c.get("psi") or 0)))]
    prediction = result.get("prediction")
    if prediction:
        prediction = {"drifted": prediction["drifted"], "reasons": "; ".join(prediction["reasons"]),
                      "psi": number(prediction.get("psi"))}
    drifted = result["drifted"]
    summary = (f"{len(drifted)} of {len(columns)} column(s) drifted: {', '.join(drifted)}." if drifted
               else f"No column drifted ({len(columns)} compared).")
    if prediction and prediction["drifted"]:
        summary += " The predictions drifted too."
    chips = [("Model", model.task.target), ("Bundle", result["bundle"]), ("New data", result["source"]),
             ("Rows", f"{result['rows']:,}"), ("Generated", generated())]
    html = render("drift.html", title=f"{model.task.target} — drift of {result['source']}", kind="report", chips=chips,
                  summary=summary, columns=columns, prediction=prediction, thresholds=result["thresholds"])
    return write_page(path, html)
