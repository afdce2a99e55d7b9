"""What a grounded answerer can be told: the config section ``answer``, declared in
:mod:`takeoff.config` beside the other task sections (the config module reads no pipeline)."""

from takeoff.config import DEFAULT_INSTRUCTIONS, DEFAULT_MIN_SCORE, DEFAULT_REFUSAL, AnswerParams

__all__ = ["DEFAULT_INSTRUCTIONS", "DEFAULT_MIN_SCORE", "DEFAULT_REFUSAL", "AnswerParams"]
