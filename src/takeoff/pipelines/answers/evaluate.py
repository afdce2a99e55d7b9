"""How well a grounded answerer finds, cites and refuses: questions whose answering passage is
known, and questions the documents do not answer.

* ``hit@1``, ``hit@k``: the right passage is the first / among the ``k`` retrieved (retrieval
  alone, whatever the threshold);
* ``citation_accuracy``: the answer was not refused and its first citation is the right passage;
* ``false_refusal_rate``: answerable questions refused; ``refusal_rate``: unanswerable questions
  refused (the higher the better).

The right passage is named by its source (file) and/or section heading; a citation matches when
its source is that file (or ends with it: ``guide/install.md`` matches ``install.md``) and its
section is that heading: the whole path, its last part or the last part without its numbering
("8.4. How do I ...?" matches "How do I ...?"); see :func:`cites`.

Example:
    >>> from takeoff.pipelines.answers import evaluate_answers
    >>> result = evaluate_answers(answerer, ["How do I install a .deb?"], expected_sections=["Installing"],
    ...                           unanswerable=["What is the capital of Peru?"])
    >>> result["metrics"]["citation_accuracy"], result["metrics"]["refusal_rate"]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from takeoff.errors import DataError

_NUMBERING = re.compile(r"^(?:chapter|section|part)?\s*\d+(?:\.\d+)*[.)]?\s+", re.I)


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _bare(heading: str) -> str:
    return _norm(_NUMBERING.sub("", heading.strip()))


def cites(citation, source: str | None = None, section: str | None = None) -> bool:
    """Whether ``citation`` is the passage of ``source`` (a file name or path) and ``section``
    (a heading or heading path); a part left as None is not checked."""
    if source:
        cited, wanted = _norm(citation.source), _norm(source)
        if cited != wanted and not cited.endswith("/" + wanted):
            return False
    if section:
        from takeoff.pipelines.answers.documents import SECTION_SEP

        cited, wanted = _norm(citation.section), _norm(section)
        last = citation.section.split(SECTION_SEP)[-1]
        last = re.sub(r"\s*\(page \d+\)$", "", last)
        if not (cited == wanted or cited.endswith(_norm(SECTION_SEP) + wanted) or _norm(last) == wanted
                or _bare(last) == _bare(section)):
            return False
    return True


def evaluate_answers(model, questions: Sequence[str], expected_sources: Sequence[str | None] | None = None,
                     expected_sections: Sequence[str | None] | None = None, unanswerable: Sequence[str] = (), *,
                     k: int | None = None, min_score: float | None = None, generate: int = 0,
                     references: Sequence[str] | None = None) -> dict[str, Any]:
    """Score an :class:`~takeoff.pipelines.answers.AnswerModel` on questions with known answers
    and questions the documents do not answer (retrieval and refusal; nothing is generated
    unless ``generate`` > 0).

    Args:
        model: the answerer.
        questions: answerable questions.
        expected_sources, expected_sections: for each question, the file and/or the section
            heading of the passage that answers it (at least one of the two per question).
        unanswerable: questions the documents do not answer.
        k, min_score: override the answerer's (default: the bundle's).
        generate: also generate answers for the first this many answerable questions (shown in
            the rows; with ``references``, scored by exact match, token F1 and ROUGE-L).
        references: reference answers of the questions (for ``generate``).

    Returns:
        ``{"metrics": {...}, "answerable": [rows], "unanswerable": [rows]}``; each row holds
        the question, the best cosine of any passage (``score``: what refusal is decided on),
        the first passage's source and section, the rank of the right passage (None when not
        retrieved) and whether the answer was refused.

    Raises:
        DataError: the lists differ in length, or a question names neither source nor section.
    """
    questions = list(questions)
    n = len(questions)
    sources = list(expected_sources) if expected_sources is not None else [None] * n
    sections = list(expected_sections) if expected_sections is not None else [None] * n
    if len(sources) != n or len(sections) != n:
        raise DataError(f"{n} questions but {len(sources)} expected sources and {len(sections)} expected sections; "
                        "give one of each per question (None where not checked)")
    missing = [i for i in range(n) if not sources[i] and not sections[i]]
    if missing:
        raise DataError(f"question {missing[0]} ({questions[missing[0]][:60]!r}) names neither the source nor the "
                        "section that answers it; pass it in `unanswerable` if the documents do not answer it")
    k = model.spec["k"] if k is None else k
    threshold = model.spec["min_score"] if min_score is None else float(min_score)
    unanswerable = list(unanswerable)
    ranked = model.rank_passages(questions + unanswerable, k) if questions or unanswerable else []
    answerable_rows = []
    for i, (found, best) in enumerate(ranked[:n]):
        rank = next((r for r, c in enumerate(found, 1) if cites(c, sources[i], sections[i])), None)
        answerable_rows.append(_row(questions[i], found, best, threshold) | {
            "expected": " — ".join(x for x in (sources[i], sections[i]) if x), "rank": rank})
    refusal_rows = [_row(q, found, best, threshold) for q, (found, best) in zip(unanswerable, ranked[n:])]
    metrics: dict[str, Any] = {"answerable": n, "unanswerable": len(unanswerable), "k": k, "min_score": threshold}
    if n:
        ranks = [r["rank"] for r in answerable_rows]
        metrics.update({
            "hit@1": sum(r == 1 for r in ranks) / n,
            f"hit@{k}": sum(r is not None for r in ranks) / n,
            "mrr": sum(1 / r for r in ranks if r) / n,
            "citation_accuracy": sum(r["rank"] == 1 and not r["refused"] for r in answerable_rows) / n,
            "false_refusal_rate": sum(r["refused"] for r in answerable_rows) / n,
        })
    if unanswerable:
        metrics["refusal_rate"] = sum(r["refused"] for r in refusal_rows) / len(unanswerable)
    if generate > 0 and n:
        count = min(generate, n)
        replies = model.answer_batch(questions[:count], k=k, min_score=threshold)
        for row, reply in zip(answerable_rows, replies):
            row["answer"] = reply.text
        if references is not None:
            from takeoff.evaluation.generation import text_scores

            scores = text_scores([r.text for r in replies], list(references)[:count])
            metrics.update({name: round(value, 4) for name, value in scores.items()})
            metrics["scored_answers"] = count
    return {"metrics": metrics, "answerable": answerable_rows, "unanswerable": refusal_rows}


def _row(question: str, found: list, best: float, threshold: float) -> dict[str, Any]:
    first = found[0] if found else None
    return {"question": question, "score": round(best, 4), "source": first.source if first else None,
            "section": first.section if first else None, "refused": first is None or best < threshold}


def choose_min_score(answerable_scores: Sequence[float], unanswerable_scores: Sequence[float]) -> float:
    """The refusal threshold that best separates the two: the cosine that maximises the mean of
    (answerable questions answered) and (unanswerable questions refused), given each question's
    best retrieval score; the middle of the widest best range when several thresholds tie."""
    good, bad = sorted(answerable_scores), sorted(unanswerable_scores)
    if not good or not bad:
        raise DataError("choosing min_score needs both answerable and unanswerable questions")
    values = sorted(set(good) | set(bad))
    candidates = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]

    def balanced(t: float) -> float:
        answered = sum(s >= t for s in good) / len(good)
        refused = sum(s < t for s in bad) / len(bad)
        return (answered + refused) / 2

    scored = [balanced(t) for t in candidates]
    best = max(scored)
    runs: list[list[float]] = []  # consecutive candidates that reach the best
    for i, (score, t) in enumerate(zip(scored, candidates)):
        if score == best:
            if runs and scored[i - 1] == best:
                runs[-1].append(t)
            else:
                runs.append([t])
    widest = max(runs, key=lambda run: run[-1] - run[0])
    return round((widest[0] + widest[-1]) / 2, 4)
