"""Grounded answers on the Debian FAQ: does the answerer cite the right section, and refuse what
the FAQ does not answer?

Builds the answerer (``takeoff.train(folder, task="answer")``) on the FAQ's chapter pages
(``benchmarks/debian_faq.py``), then, on the questions of ``benchmarks/data/debian_faq``:

1. on the **train** split only: the keyword weight (BM25 added to the cosine) with the best
   hit@1, and the refusal threshold ``min_score`` that best separates the train questions from
   a tuning half of the unanswerable ones (:func:`choose_min_score`);
2. on the **test** split and the other half of the unanswerable questions, with those choices:
   hit@1, hit@k, citation accuracy (answered, right section cited first), false refusals and
   the refusal rate;
3. real answers of SmolLM2-135M-Instruct for a few test questions (``--generate``; the CPU is
   slow, so only a handful).

Retrieval and refusal need no generation. Usage::

    python benchmarks/answers.py                 # needs `apt-get install debian-faq`
    python benchmarks/answers.py --generate 4 --json answers.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import debian_faq  # noqa: E402  (beside this script)

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)


def split_unanswerable(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Two halves, alternating within each kind (off_topic, related): one tunes the threshold,
    the other measures it."""
    tune, held = [], []
    for kind in sorted({r.get("kind", "") for r in rows}):
        of_kind = [r for r in rows if r.get("kind", "") == kind]
        tune += of_kind[0::2]
        held += of_kind[1::2]
    return tune, held


def evaluate(model, rows: list[dict], unanswerable: list[dict], **options) -> dict:
    from takeoff.pipelines.answers import evaluate_answers

    return evaluate_answers(model, [r["question"] for r in rows], [r["file"] for r in rows],
                            [r["section"] for r in rows], [r["question"] for r in unanswerable], **options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="smollm2", help="the model that writes the answers")
    parser.add_argument("--k", type=int, default=4, help="passages retrieved per question")
    parser.add_argument("--generate", type=int, default=3, help="test questions answered by the generator")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--out", type=Path, help="where the bundle goes (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    import takeoff
    from takeoff.pipelines.answers.evaluate import choose_min_score

    work = Path(tempfile.mkdtemp(prefix="answers-bench-"))
    docs = work / "faq-docs"
    try:
        debian_faq.documents(docs)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out = args.out or work / "support"
    started = time.monotonic()
    # the generator referenced, not copied: the bundle stays small; it is resolved when first used
    model = takeoff.train(docs, task="answer", generator=args.generator, out=out,
                          config={"answer": {"k": args.k, "embed_generator": False}})
    build_s = time.monotonic() - started
    train, test = debian_faq.questions("train"), debian_faq.questions("test")
    tune_refusals, held_refusals = split_unanswerable(debian_faq.unanswerable())

    # 1. choices on the train split only
    sweep = {}
    for weight in WEIGHTS:
        model.manifest["answer"]["keyword_weight"] = weight
        sweep[weight] = evaluate(model, train, [], min_score=-1.0)["metrics"]
    weight = max(WEIGHTS, key=lambda w: (sweep[w]["hit@1"], -w))
    model.manifest["answer"]["keyword_weight"] = weight
    tuning = evaluate(model, train, tune_refusals, min_score=-1.0)
    min_score = choose_min_score([r["score"] for r in tuning["answerable"]], [r["score"] for r in tuning["unanswerable"]])
    on_train = evaluate(model, train, tune_refusals, min_score=min_score)["metrics"]

    # 2. the held-out questions
    t = time.monotonic()
    held = evaluate(model, test, held_refusals, min_score=min_score)
    per_question_ms = 1000 * (time.monotonic() - t) / (len(test) + len(held_refusals))
    on_test = held["metrics"]
    all_refusals = evaluate(model, [], debian_faq.unanswerable(), min_score=min_score)["metrics"]["refusal_rate"]
    by_kind = {}
    for kind in ("off_topic", "related"):
        rows = [r for r in held_refusals if r.get("kind") == kind]
        by_kind[kind] = (evaluate(model, [], rows, min_score=min_score)["metrics"]["refusal_rate"], len(rows))

    k = args.k
    print(f"\n## Grounded answers on the Debian FAQ (debian-faq {debian_faq.check()['sections']} sections; "
          f"{model.manifest['training']['passages']} passages from {model.manifest['training']['files']} pages, "
          f"built in {build_s:.1f} s)\n")
    print("keyword weight chosen on the train split (hit@1): "
          + ", ".join(f"{w:g}: {sweep[w]['hit@1']:.3f}" for w in WEIGHTS) + f" → {weight:g}")
    print(f"min_score chosen on the train split + {len(tune_refusals)} unanswerable (tuning half): {min_score}\n")
    print(f"| questions | n | hit@1 | hit@{k} | citation accuracy | false refusals | unanswerable refused |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in (("train (choices made here)", on_train), ("**test (held out)**", on_test)):
        print(f"| {name} | {m['answerable']} + {m['unanswerable']} | {m['hit@1']:.3f} | {m[f'hit@{k}']:.3f} | "
              f"{m['citation_accuracy']:.3f} | {m['false_refusal_rate']:.3f} | {m['refusal_rate']:.3f} |")
    print("\nheld-out unanswerable refused by kind: "
          + ", ".join(f"{kind} {rate:.3f} (of {n})" for kind, (rate, n) in by_kind.items())
          + f"; all {len(tune_refusals) + len(held_refusals)} (tuning half included): {all_refusals:.3f}")
    print(f"retrieval: {per_question_ms:.1f} ms per question (batched, embedding included)")
    misses = [r for r in held["answerable"] if r["rank"] != 1 or r["refused"]]
    for r in misses[:8]:
        print(f"  miss: {r['question']!r}\n        expected {r['expected']!r}, cited {r['section']!r} "
              f"(rank of expected: {r['rank']}, score {r['score']})")
    leaked = [r for r in held["unanswerable"] if not r["refused"]]
    for r in leaked:
        print(f"  answered an unanswerable one: {r['question']!r} → {r['section']!r} (score {r['score']})")

    samples = []
    if args.generate > 0:
        questions = [r["question"] for r in test[:args.generate]] + [held_refusals[0]["question"]]
        print(f"\n### Answers of {args.generator} ({len(questions)} questions, greedy, max {args.max_new_tokens} "
              "new tokens)\n")
        for question in questions:
            t = time.monotonic()
            reply = model.answer(question, min_score=min_score, max_new_tokens=args.max_new_tokens)
            seconds = time.monotonic() - t
            cited = [f"{c.source} — {c.section.split(' > ')[-1]} ({c.score:.2f})" for c in reply.citations]
            samples.append({"question": question, "answer": reply.text, "refused": reply.refused, "citations": cited,
                            "seconds": round(seconds, 1)})
            print(f"Q: {question}\nA ({seconds:.1f} s{', refused' if reply.refused else ''}): {reply.text}")
            for line in cited:
                print(f"   cites {line}")
            print()
    sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps({
            "build_s": round(build_s, 1), "keyword_weight": weight, "sweep": sweep, "min_score": min_score,
            "train": on_train, "test": on_test, "refusal_by_kind": by_kind, "refusal_all": all_refusals,
            "retrieval_ms_per_question": round(per_question_ms, 2), "samples": samples}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
