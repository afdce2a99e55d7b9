"""Multipart uploads to the predict routes: a CSV file, or the image file(s) of one record."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from takeoff.serving.errors import ApiError
from takeoff.serving.requests import RequestSchema


async def read_upload(request: Request, body: bytes, schema: RequestSchema) -> tuple[bytes, bool]:
    """The CSV of a multipart upload (field ``file``), or, for a model with image inputs,
    one record made of the uploaded image file(s) (a field named as the image column) and the
    other form fields; returns the body and whether it is a JSON record."""
    async def stream():
        yield body

    images = [n for n, k in schema.kinds.items() if k == "image"]
    try:
        form = await MultiPartParser(request.headers, stream(), max_files=max(1, len(images)), max_fields=200).parse()
    except Exception as exc:  # noqa: BLE001 (python-multipart raises several kinds on malformed bodies)
        raise ApiError(400, f"the multipart body cannot be read: {exc}", code="invalid_multipart") from None
    if any(isinstance(form.get(n), UploadFile) for n in images):
        try:
            record: dict[str, Any] = {}
            for name in schema.names:
                value = form.get(name)
                if isinstance(value, UploadFile):
                    record[name] = base64.b64encode(await value.read()).decode("ascii")
                else:
                    record[name] = value if value not in (None, "") else None
            return json.dumps(record).encode(), True
        finally:
            await form.close()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "no file in the upload; send the CSV as the multipart field 'file'",
                       fields=[{"field": "file", "problem": "required field is missing"}])
    try:
        return await upload.read(), False
    finally:
        await form.close()
