"""Metrics of generated text against reference answers.

* ``exact_match``: share of answers equal to the reference after normalisation (lower case,
  punctuation and the articles a/an/the removed, spaces collapsed: SQuAD's rule);
* ``token_f1``: mean F1 of the normalised words shared with the reference (SQuAD's);
* ``rouge_l``: mean ROUGE-L F-measure (longest common subsequence of words), computed by Google's
  ``rouge-score`` package with Porter stemming;
* ``perplexity`` is the model's (``GenerativeModel.perplexity``), not computed here.

Example:
    >>> text_scores(["Paris is the capital."], ["The capital is Paris"])["token_f1"]
    1.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_PUNCT)).split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def text_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean exact match, token F1 and ROUGE-L of ``predictions`` against ``references``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {}
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    n = len(predictions)
    return {
        "exact_match": sum(normalize(p) == normalize(r) for p, r in zip(predictions, references)) / n,
        "token_f1": sum(token_f1(p, r) for p, r in zip(predictions, references)) / n,
        "rouge_l": sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)) / n,
    }
