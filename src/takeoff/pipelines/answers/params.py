"""What a grounded answerer can be told (config section ``answer``), declared beside its code."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_REFUSAL = "I could not find this in the documents."
DEFAULT_INSTRUCTIONS = (
    "Answer the question using only the numbered passages below. Cite the passages you use by "
    "their numbers, like [1]. If the passages do not contain the answer, reply exactly: {refusal}")
# Chosen on the Debian FAQ's training questions (docs/generate.md, "Grounded answers"): the
# cosine of all-MiniLM-L6-v2 that best separates answerable from unanswerable questions.
DEFAULT_MIN_SCORE = 0.4


class AnswerParams(BaseModel):
    """Grounded answers from documents (task "answer"): retrieval, refusal and generation."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    text: str | None = Field(
        None, description="A table of passages: the column holding them (default 'text'); optional 'source', "
        "'section' and 'title' columns name where each comes from. Not used for a folder of documents.")
    generator: str = Field(
        "smollm2", description="The model that writes the answers: a bundle of `takeoff train --task generate`, or a "
        "base model ('smollm2', the default; 'gemma3-270m'; a Hugging Face folder; a .gguf file). Never downloaded.")
    embed_generator: bool = Field(
        True, description="Copy the generator's weights into the bundle (default), or keep its name and sha256 only "
        "(loading then needs the same model on that machine).")
    encoder: str | None = Field(
        None, description="Encoder that embeds passages and questions: a name, alias or local folder (default "
        "all-MiniLM-L6-v2). Never downloaded.")
    embed_encoder: bool = Field(True, description="Copy the encoder into the bundle (default), or reference it.")
    k: int = Field(4, ge=1, le=50, description="Passages retrieved per question (those at or above min_score are "
                   "given to the generator and cited).")
    keyword_weight: float = Field(
        0.3, ge=0.0, le=10.0, description="Weight of shared keywords (BM25, scaled to 0-1 per question) added to the "
        "cosine similarity when ranking passages; 0 ranks by meaning alone. Refusal uses the cosine only.")
    min_score: float = Field(
        DEFAULT_MIN_SCORE, ge=-1.0, le=1.0, description="Cosine similarity below which no passage is close enough: "
        "the answer is then the refusal text, and nothing is generated.")
    refusal: str = Field(DEFAULT_REFUSAL, min_length=1, description="What the answerer says when the documents do "
                         "not answer the question.")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Most tokens of a generated answer.")
    chunk_chars: int = Field(1200, ge=200, le=100_000, description="Longest passage when splitting documents: "
                             "longer sections are split at paragraph boundaries.")
    max_passage_chars: int = Field(1000, ge=100, le=100_000, description="Most characters of each passage put in "
                                   "the generator's prompt (shortened further when the prompt would not fit the "
                                   "model's context).")
    system: str | None = Field(None, description="A system message for the generator (default: the generator's own).")
    instructions: str = Field(
        DEFAULT_INSTRUCTIONS, min_length=1, description="What the prompt tells the generator before the passages; "
        "'{refusal}' is replaced by the refusal text.")
    questions: str | None = Field(
        None, description="Optional evaluation questions (a table: 'question', and 'source' and/or 'section' naming "
        "the passage that answers it; rows without either are questions the documents do not answer): retrieval "
        "hit@k, citation accuracy and refusal rates go into the report and the bundle's metrics.")
