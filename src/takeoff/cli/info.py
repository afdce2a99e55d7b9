"""`takeoff info`: what a bundle is — task, members, metrics, and its privacy and fairness facts."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from takeoff.cli.output import metrics_table, out, run


def info(
    bundle: Annotated[str, typer.Argument(help="Bundle directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as one JSON object.")] = False,
) -> None:
    """Show what a bundle is: task, members, validation metrics, the ε of differential privacy
    and the fairness audit's ratios."""
    from takeoff import api

    model = run(api.load, bundle)
    m = model.manifest
    facts = {
        "bundle": str(model.path),
        "kind": getattr(model, "kind", None),
        "task": m.get("task", {}).get("kind"),
        "target": m.get("task", {}).get("target"),
        "members": [{"family": x["family"], "weight": x.get("weight")} for x in m.get("members", [])],
        "created": m.get("created"),
        "takeoff_version": m.get("takeoff_version"),
        "metrics": m.get("metrics", {}),
        "privacy": m.get("privacy", {}),
        "fairness": {k: m["fairness"][k] for k in ("sensitive", "ratios", "warnings") if k in m["fairness"]}
        if m.get("fairness") else {},
    }
    if as_json:
        sys.stdout.write(json.dumps(facts) + "\n")
        return
    members = ", ".join(f"{x['family']} ({x['weight']:.2f})" for x in facts["members"] if x.get("weight") is not None)
    out.print(f"{facts['bundle']}: {facts['task']} on '{facts['target']}'" + (f"; {members}" if members else ""))
    out.print(f"created {facts['created']} with takeoff {facts['takeoff_version']}")
    if facts["metrics"]:
        out.print(metrics_table("validation metrics", facts["metrics"]))
    dp = facts["privacy"].get("dp")
    if dp:
        out.print(f"differential privacy: ε = {dp['epsilon']:.3f} spent (target {dp.get('target_epsilon', '?')}), "
                  f"δ = {dp['delta']:.1e}, {dp['accountant']} accountant, noise multiplier {dp['noise_multiplier']:.3f}, "
                  f"clipping {dp['max_grad_norm']:g}")
    else:
        out.print("differential privacy: none (trained without --dp-epsilon)")
    for column, ratios in facts["fairness"].get("ratios", {}).items():
        shown = ", ".join(f"{k.replace('_', ' ')} ratio {v:.2f}" for k, v in ratios.items() if v is not None)
        out.print(f"fairness by '{column}': {shown}")
    for warning in facts["fairness"].get("warnings", []):
        out.print(f"fairness warning: {warning}")
