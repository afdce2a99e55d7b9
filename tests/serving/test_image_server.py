"""An image-cnn bundle behind a real HTTP server: base64 JSON, multipart image upload, and
the refusals (file paths are never read from the server's disk)."""

from __future__ import annotations

import base64
import shutil

import pytest

import takeoff
from api_client import assert_error, post

pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def image_bundle(datasets, tmp_path_factory):
    root = tmp_path_factory.mktemp("img")
    for label in ("0", "1"):
        (root / "data" / label).mkdir(parents=True)
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:30]:
            shutil.copy(path, root / "data" / label / path.name)
    out = root / "digits01"
    takeoff.train(root / "data", target="label", family="image-cnn", time_budget=20, seed=0, out=out,
                  config={"models": {"image-cnn": {"width": 8, "flip": False, "epochs": 4}}, "refit": False})
    return out, root / "data"


def test_base64_json_and_multipart_upload_agree(start_server, image_bundle):
    bundle, data = image_bundle
    url = start_server(bundle) + "/v1/predict"
    png = sorted((data / "1").glob("*.png"))[-1].read_bytes()
    model = takeoff.load(bundle)
    import pandas as pd

    expected = model.predict(pd.DataFrame({"image": pd.Series([png], dtype=object)}))[0]
    one = post(url, json={"image": base64.b64encode(png).decode()})
    assert one.status_code == 200, one.text
    uri = post(url, json={"records": [{"image": "data:image/png;base64," + base64.b64encode(png).decode()}]})
    upload = post(url, files={"image": ("digit.png", png, "image/png")})
    assert upload.status_code == 200, upload.text
    answers = [r.json()["predictions"][0]["prediction"] for r in (one, uri, upload)]
    assert answers == [str(expected)] * 3 or answers == [expected] * 3


def test_paths_and_bad_images_are_refused(start_server, image_bundle):
    bundle, data = image_bundle
    url = start_server(bundle) + "/v1/predict"
    path = str(sorted((data / "0").glob("*.png"))[0])
    error = assert_error(post(url, json={"image": path}), 422)
    assert "not base64" in error["message"] and "paths are not read" in error["message"]
    not_image = post(url, json={"image": base64.b64encode(b"hello, not a picture").decode()})
    assert not_image.status_code == 422, not_image.text
    assert "not a readable image" in not_image.text


def test_explain_answers_for_an_image_record(start_server, image_bundle):
    bundle, data = image_bundle
    url = start_server(bundle) + "/v1/explain"
    png = sorted((data / "0").glob("*.png"))[-1].read_bytes()
    answer = post(url, json={"record": {"image": base64.b64encode(png).decode()}, "top": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [a["column"] for a in body["attributions"]] == ["image"]
    assert body["attributions"][0]["attribution"] is not None
