"""Feasibility: is a prediction worth pursuing (signal, learning curve, a simple model's
score, serving cost)? See :func:`assess`."""

from takeoff.assess.feasibility import assess

__all__ = ["assess"]
