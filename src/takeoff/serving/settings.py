"""Settings of ``takeoff serve``: every knob of the server, declared once with its default."""

from __future__ import annotations

import os

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENV_PREFIX = "TAKEOFF_SERVE_"  # TAKEOFF_SERVE_MAX_COLUMNS=500 sets max_columns where no value is given


def _env_api_key() -> str | None:
    return os.environ.get("TAKEOFF_API_KEY") or None


class ServeSettings(BaseModel):
    """How the REST server listens, authenticates, limits and batches.

    Example:
        >>> ServeSettings(port=9000, api_key="s3cret", max_records=1000)
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Any setting not given takes ``TAKEOFF_SERVE_<NAME>`` from the environment when set
        (how ``takeoff serve`` reaches the settings that have no flag, e.g. the limits)."""
        if not isinstance(data, dict):
            return data
        found = {name: os.environ[ENV_PREFIX + name.upper()] for name in cls.model_fields
                 if name not in data and ENV_PREFIX + name.upper() in os.environ}
        if "cors_origins" in found:
            found["cors_origins"] = [o for o in found["cors_origins"].split(",") if o]
        return {**found, **data}

    host: str = Field("127.0.0.1", description="Interface to listen on; 0.0.0.0 for every interface.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes (each loads every model).")
    api_key: str | None = Field(
        default_factory=_env_api_key, repr=False,
        description="Bearer token required on every route but /healthz, /readyz and the page (default: env TAKEOFF_API_KEY).",
    )
    default_model: str | None = Field(
        None, description="Model answering POST /v1/predict (default: the only model, when there is one)."
    )
    max_body_bytes: int = Field(10_000_000, ge=1, description="Largest request body accepted (413 above).")
    max_records: int = Field(10_000, ge=1, description="Most records in one request (413 above).")
    timeout_s: float = Field(30.0, gt=0, description="Seconds a prediction request may take (504 after).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty turns CORS off.")
    batch_max_size: int = Field(64, ge=1, description="Most rows predicted together by the micro-batcher (neural families).")
    batch_max_wait_ms: float = Field(2.0, ge=0, description="How long the micro-batcher waits for more requests to join a batch.")
    access_log: bool = Field(True, description="Log one line per request (uvicorn's access log); /metrics counts requests either way.")
    strict: bool = Field(True, description="Reject values that do not parse (like `takeoff predict --strict`) instead of imputing them.")
    # Resource limits (docs/serving.md, "Limits"): each bounds what one client can make the server do.
    max_columns: int = Field(2_000, ge=1, description="Most fields in one record or columns in one CSV or tensor (413 above).")
    max_cells: int = Field(2_000_000, ge=1, description="Most values (records x fields) in one request (413 above).")
    max_json_depth: int = Field(64, ge=2, le=500, description="Deepest nesting of a JSON body (400 above).")
    max_connections: int = Field(
        1_000, ge=1, description="Open connections (and requests in flight) per worker; at it, a new connection closes the one waiting longest for a request, or gets 503 when all are busy.")
    header_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a connection may take to send a request's headers, from connecting or from its previous answer; then it is closed.")
    keep_alive_s: float = Field(5.0, gt=0, description="Seconds an idle keep-alive connection stays open after an answer (uvicorn's timeout_keep_alive).")
    max_header_bytes: int = Field(16_384, ge=1_024, description="Largest request line and headers (431 above).")
    # Generative models (docs/generate.md, "Serving: an OpenAI-compatible API").
    max_tokens_limit: int = Field(
        2_048, ge=1, le=8_192, description="Most tokens one chat or text completion may ask for (max_tokens; 400 above); "
                                           "also the default when a request gives none, within the model's context.")
