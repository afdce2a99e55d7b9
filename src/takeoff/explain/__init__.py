"""Explanations of a bundle's predictions (``takeoff explain``, ``POST /v1/explain``).

Global: permutation importance (every family), TreeSHAP (LightGBM), Integrated Gradients
(MLP). Local, per row: TreeSHAP, Integrated Gradients, column occlusion (text families) and
word attributions for text columns. Everything is reported per input column, in the
probability of the explained class or the predicted value. See docs/explain.md.

Example:
    >>> import takeoff
    >>> from takeoff.explain import explain
    >>> explanation = explain(takeoff.load("runs/credit"), "holdout.csv", rows=5)  # doctest: +SKIP
    >>> explanation.write_html("explanation.html")                                 # doctest: +SKIP
"""

from __future__ import annotations

from takeoff.explain.explanation import ExplainParams, Explanation, explain

__all__ = ["ExplainParams", "Explanation", "explain"]
