"""The answer pipeline: read documents → split into passages → embed them (the search index) →
find the generator → (with evaluation questions) score retrieval and refusal → report → bundle.

Nothing is trained: the passages are embedded with a pretrained encoder and the generator is a
base model or a fine-tuned bundle, used as it is. A build takes seconds to minutes (embedding
is the cost); it is not resumable, and one that fails leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff._version import __version__
from takeoff.errors import DataError
from takeoff.pipelines.answers.documents import SECTION_SEP, Documents, read_documents, read_passages_table
from takeoff.pipelines.answers.model import AnswerModel, generator_folder
from takeoff.pipelines.run_dir import new_output_dir, read_data, remove_unfinished

# the last headings of a passage's path embedded with its text: on the Debian FAQ's training
# questions the last one alone ranked best by cosine (hit@1 0.688, against 0.665 for two, 0.685
# for the whole path and 0.588 for none; docs/generate.md)
EMBED_SECTION_PARTS = 1


def embed_text(source: str, section: str, text: str) -> str:
    """What is embedded (and searched for keywords) for a passage: its last heading (the
    question it answers, in a FAQ), then its text."""
    heading = SECTION_SEP.join(section.split(SECTION_SEP)[-EMBED_SECTION_PARTS:]) if section else ""
    return f"{heading}\n{text}" if heading else text


def read_source(data, params, table=None, sql=None, encoding=None, sep=None, decimal=None) -> Documents:
    """The passages of ``data``: a folder of documents, else a table of passages (its
    ``params.text`` column, default 'text')."""
    if isinstance(data, (str, Path)) and "://" not in str(data) and Path(data).is_dir():
        if params.text is not None:
            raise DataError(f"--text names a column of a table of passages, but {data} is a folder of documents. "
                            "Fix: drop --text (documents are split at their headings), or pass a table.")
        return read_documents(data, chunk_chars=params.chunk_chars, encoding=encoding)
    df, name = read_data(data, table, sql, encoding, sep, decimal)
    return read_passages_table(df, name, text=params.text or "text", chunk_chars=params.chunk_chars)


def read_questions(path: str) -> dict[str, list]:
    """Evaluation questions from a table: 'question', and 'source' and/or 'section' (rows with
    neither are questions the documents do not answer); an optional 'answer' column holds
    reference answers."""
    from takeoff.data.schema import require_columns

    df, name = read_data(path)
    require_columns(df, ["question"], name, role="question column (answer.questions)")
    answerable: dict[str, list] = {"questions": [], "sources": [], "sections": [], "references": []}
    unanswerable = []
    for row in df.to_dict(orient="records"):
        question = _text(row.get("question"))
        if not question:
            continue
        source, section = _text(row.get("source")), _text(row.get("section"))
        if source or section:
            answerable["questions"].append(question)
            answerable["sources"].append(source or None)
            answerable["sections"].append(section or None)
            answerable["references"].append(_text(row.get("answer")))
        else:
            unanswerable.append(question)
    if not answerable["questions"] and not unanswerable:
        raise DataError(f"{name} holds no question (every 'question' cell is empty)", column="question")
    return {**answerable, "unanswerable": unanswerable, "name": name}


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def train(data, cfg, out=None, table=None, sql=None, encoding=None, *, sep=None, decimal=None) -> AnswerModel:
    """Build a grounded answerer from ``data`` (a folder of documents, or a table of passages).

    Raises:
        DataError: nothing readable in the folder, a missing text column, bad questions.
        BaseModelNotFoundError, BundleError: the generator is not on this machine / not a
            generate bundle (found before anything is written).
    """
    from takeoff.models.encoder import folder_digest
    from takeoff.pipelines.generation.model import GenerativeModel

    params = cfg.answer
    started = time.monotonic()
    docs = read_source(data, params, table, sql, encoding, sep, decimal)
    folder, generate = generator_folder(params.generator)  # fails before anything is written
    questions = read_questions(params.questions) if params.questions else None
    generate = {**generate, "device": cfg.device}
    if params.system is not None:
        generate["system"] = params.system
    generator = GenerativeModel({"task": {"kind": "generate", "target": None, "classes": []}, "generate": generate},
                                folder)
    gen_spec: dict[str, Any] = {"name": params.generator, "embedded": params.embed_generator,
                                "base_model": generate.get("base_model"), "method": generate.get("method")}
    if not params.embed_generator:
        gen_spec.update(sha256=folder_digest(folder), generate=generate)

    run_dir = Path(out) if out is not None else None
    created = False
    if run_dir is not None:
        new_output_dir(run_dir)
        created = True
    work = Path(tempfile.mkdtemp(prefix="takeoff-answer-"))
    try:
        model = _build(docs, params, generator, gen_spec, started)
        if questions is not None:
            _evaluate(model, questions)
        model.manifest["training"]["seconds"] = round(time.monotonic() - started, 1)
        if run_dir is not None:
            _report(model, docs, questions, work / "report.html")
            model.save(run_dir)
    except BaseException:
        if created:
            remove_unfinished(run_dir)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model


def _build(docs: Documents, params, generator, gen_spec: dict[str, Any], started: float) -> AnswerModel:
    from takeoff.pipelines.search import build_index

    frame = pd.DataFrame({"embed": [embed_text(p.source, p.section, p.text) for p in docs.passages],
                          "passage": [p.text for p in docs.passages],
                          "source": [p.source for p in docs.passages],
                          "section": [p.section for p in docs.passages]})
    index = build_index(frame, text="embed", answer="passage", encoder=params.encoder,
                        embed_encoder=params.embed_encoder)
    index_notes = [n for n in index.notes if "repeat a text" in n or "truncated" in n]
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"kind": "answer", "target": None, "classes": []},
        "answer": {
            "method": "retrieval-augmented generation", "system": params.system,
            "k": params.k, "min_score": params.min_score, "keyword_weight": params.keyword_weight, "refusal": params.refusal,
            "max_new_tokens": params.max_new_tokens, "max_passage_chars": params.max_passage_chars,
            "chunk_chars": params.chunk_chars, "instructions": params.instructions,
            "documents": {"name": docs.name, "files": docs.files, "passages": len(docs.passages),
                          "skipped": [{"file": f, "why": w} for f, w in docs.skipped], "ignored": docs.ignored},
            "index": {key: index.manifest[key] for key in ("task", "search", "encoder", "training")},
            "generator": gen_spec,
        },
        "metrics": {},
        "training": {"source": docs.name, "files": docs.files, "passages": len(docs.passages),
                     "embedding_seconds": index.manifest["training"]["seconds"],
                     "seconds": round(time.monotonic() - started, 1), "notes": [*docs.notes, *index_notes]},
    }
    return AnswerModel(manifest, index, generator)


def _evaluate(model: AnswerModel, questions: dict[str, list]) -> None:
    from takeoff.pipelines.answers.evaluate import evaluate_answers

    result = evaluate_answers(model, questions["questions"], questions["sources"], questions["sections"],
                              questions["unanswerable"])
    model.manifest["metrics"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in result["metrics"].items()}
    model.manifest["training"]["evaluation"] = {"questions": questions["name"], "answerable": result["answerable"],
                                                "unanswerable": result["unanswerable"]}


def _report(model: AnswerModel, docs: Documents, questions: dict | None, path: Path) -> None:
    from takeoff.evaluation.report import write_answer_report

    evaluation = model.manifest["training"].get("evaluation", {})
    spec = model.spec
    write_answer_report(
        path, title=f"{Path(docs.name).name or docs.name} — grounded answers", data_name=docs.name,
        metrics=model.metrics, answerable=evaluation.get("answerable", []),
        unanswerable=evaluation.get("unanswerable", []), skipped=docs.skipped, notes=model.notes,
        documents=_document_table(docs),
        info={"answerer": {"passages": len(docs.passages), "files read": docs.files, "k": spec["k"],
                           "min score": spec["min_score"], "refusal": spec["refusal"],
                           "generator": spec["generator"]["name"], "encoder": model.index.manifest["encoder"]["name"],
                           "chunk chars": spec["chunk_chars"]}})
    model.attach("report.html", path)


def _document_table(docs: Documents) -> dict[str, dict[str, Any]]:
    """Passages and characters per file (the 30 files with most passages)."""
    counts: dict[str, dict[str, Any]] = {}
    for p in docs.passages:
        row = counts.setdefault(p.source, {"passages": 0, "characters": 0})
        row["passages"] += 1
        row["characters"] += len(p.text)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]["passages"])[:30])
