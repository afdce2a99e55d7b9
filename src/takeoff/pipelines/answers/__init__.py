"""Grounded answers (task "answer"): a folder of documents → passages → a search index, and a
causal language model that answers from the passages it retrieves, citing them, or refuses
when none is close enough.

read and split (``documents.py``) → embed (the search pipeline's index) → bundle
(:class:`AnswerModel`, ``model.py``); ``evaluate.py`` scores retrieval, citations and refusals.

Example:
    >>> import takeoff
    >>> answerer = takeoff.train("docs/", task="answer", out="runs/support")
    >>> reply = takeoff.load("runs/support").answer("How do I install a .deb file?")
    >>> reply.text, [(c.source, c.section) for c in reply.citations], reply.refused
"""

from __future__ import annotations

__all__ = ["Answer", "AnswerModel", "AnswerStream", "Citation", "GroundedCompletion", "evaluate_answers"]


def __getattr__(name: str):  # the model module imports the generation engine's types: only on use
    if name == "evaluate_answers":
        from takeoff.pipelines.answers.evaluate import evaluate_answers

        return evaluate_answers
    if name in __all__:
        from takeoff.pipelines.answers import model

        return getattr(model, name)
    raise AttributeError(name)
