"""The web page at ``GET /``, driven in real headless Chromium against a real ``takeoff`` server.

Servers come from ``tests/serving/conftest.py`` (two credit-risk bundles, ``credit`` the
default). Screenshots land in ``tests/serving/artifacts/`` for a person to look at.
Skipped only when Playwright or a Chromium binary is missing.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the web page tests need Playwright for Python")

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("the web page tests need Chromium (/usr/bin/chromium or `chromium` on PATH)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh tab (own sessionStorage) at desktop size; fails the test on any uncaught JS error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    js_errors: list[str] = []
    tab.on("pageerror", lambda error: js_errors.append(str(error)))
    yield tab
    context.close()
    assert not js_errors, f"uncaught JavaScript errors on the page: {js_errors}"


def _open(page, url: str) -> None:
    page.goto(url + "/")
    page.get_by_label("Income", exact=True).wait_for()


def _shot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _predict(page) -> dict:
    """Click Predict; return the JSON body the page sent."""
    with page.expect_request(re.compile(r"/v1/models/[^/]+/predict$")) as sent:
        page.get_by_role("button", name="Predict").click()
    return json.loads(sent.value.post_data)


def _bars(page) -> dict[str, float]:
    """The probability bars as {label: percent shown}."""
    rows = page.locator(".bars .bar-row")
    rows.first.wait_for()
    shown = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        shown[row.locator(".bar-label").inner_text()] = float(row.locator(".bar-pct").inner_text().rstrip("%"))
    return shown


def test_page_predicts_with_the_default_model(page, server_url):
    _open(page, server_url)

    # the stylesheet and script came from /static
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).borderRadius") == "14px"

    picker = page.get_by_label("Model", exact=True)
    names = picker.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert set(names) == {"credit", "credit-mlp"}
    assert picker.input_value() == "credit"  # the server's default is pre-selected

    income = page.get_by_label("Income", exact=True)
    assert income.get_attribute("type") == "number"
    median = income.get_attribute("placeholder")
    assert median and float(median) > 0
    home = page.get_by_label("Home", exact=True)
    assert home.evaluate("node => node.tagName") == "SELECT"
    categories = home.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert {"owner", "rent"} <= set(categories)

    page.get_by_role("button", name="Fill example").click()
    assert float(income.input_value()) == float(median)
    assert home.input_value() == categories[1]  # the most frequent category, after "not set"

    sent = _predict(page)
    record = sent["records"][0]
    assert set(record) >= {"Income", "Home"} and record["Home"] == home.input_value()

    prediction = page.locator("#prediction-value")
    prediction.wait_for()
    label = prediction.inner_text()
    assert label in {"good", "bad"}
    bars = _bars(page)
    assert set(bars) == {"good", "bad"}
    assert sum(bars.values()) == pytest.approx(100, abs=0.2)
    assert page.locator(".bar-row.is-predicted .bar-label").inner_text() == label

    # the page shows what the API answers for the same record
    headers = {"Content-Type": "application/json"}
    answer = httpx.post(f"{server_url}/v1/models/credit/predict", content=json.dumps(sent), headers=headers).json()
    expected = answer["predictions"][0]
    assert expected["prediction"] == label
    for cls, p in expected["probabilities"].items():
        assert bars[cls] == pytest.approx(100 * p, abs=0.051)

    # the model panel: metrics from the bundle, and the report link when the server offers one
    details = httpx.get(f"{server_url}/v1/models/credit").json()
    panel = page.locator("#model-info")
    assert "ROC AUC" in panel.inner_text()
    report = panel.get_by_role("link", name=re.compile("Open full report"))
    if details.get("report_url"):
        assert report.get_attribute("href") == details["report_url"]
        assert httpx.get(httpx.URL(server_url).join(details["report_url"])).status_code == 200
    else:
        assert report.count() == 0
    _shot(page, "page.png")

    # a phone-wide window: one column, nothing wider than the screen
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    _shot(page, "page-phone.png")


def test_page_switches_to_the_mlp_model(page, server_url):
    _open(page, server_url)
    page.get_by_label("Model", exact=True).select_option("credit-mlp")
    page.locator("#model-info .member-name", has_text="MLP").wait_for()
    assert page.url.endswith("#credit-mlp")

    page.get_by_role("button", name="Fill example").click()
    # a category the model never saw goes through "Other…"; a yes/no field as a JSON boolean
    page.get_by_label("Home", exact=True).select_option(label="Other…")
    page.get_by_label("Other value for Home").fill("houseboat")
    page.locator('.field[data-field="Records"]').get_by_role("radio", name="Yes").check()

    # an extra field the model does not use comes back as a warning from the server
    def add_field(route):
        body = route.request.post_data_json
        body["records"][0]["Nickname"] = "Ada"
        route.continue_(post_data=json.dumps(body))

    page.route(re.compile(r"/v1/models/[^/]+/predict$"), add_field)
    sent = _predict(page)
    assert sent["records"][0]["Home"] == "houseboat"
    assert sent["records"][0]["Records"] is True
    page.locator("#prediction-value").wait_for()
    assert "Nickname" in page.locator("#result .warnings").inner_text()
    assert page.locator("#prediction-value").inner_text() in {"good", "bad"}
    assert sum(_bars(page).values()) == pytest.approx(100, abs=0.2)
    assert page.locator("#page-error").is_hidden()

    # the hash picks the model on a fresh load too
    page.reload()
    page.locator("#model-info .member-name", has_text="MLP").wait_for()
    assert page.get_by_label("Model", exact=True).input_value() == "credit-mlp"


def test_page_marks_the_fields_the_server_rejects(page, server_url):
    # The form always sends every field, so drop one on the way out: the real server then
    # answers its real 422, naming the field, and the page must mark it.
    def drop_income(route):
        body = route.request.post_data_json
        del body["records"][0]["Income"]
        route.continue_(post_data=json.dumps(body))

    _open(page, server_url)
    page.route(re.compile(r"/v1/models/[^/]+/predict$"), drop_income)
    page.get_by_role("button", name="Fill example").click()
    with page.expect_response(re.compile(r"/predict$")) as answered:
        page.get_by_role("button", name="Predict").click()
    response = answered.value
    assert response.status == 422
    error = response.json()["error"]
    assert any(f["field"].endswith("Income") for f in error["fields"])

    field = page.locator('.field[data-field="Income"]')
    page.wait_for_function("document.querySelector('.field[data-field=\"Income\"]').classList.contains('is-invalid')")
    income = page.get_by_label("Income", exact=True)
    assert income.get_attribute("aria-invalid") == "true"
    problem = next(f["problem"] for f in error["fields"] if f["field"].endswith("Income"))
    assert field.locator(".field-error").inner_text().lower() == problem.lower()
    alert = page.locator("#result [role=alert]")
    assert error["message"].lower() in alert.inner_text().lower()
    assert page.evaluate("document.activeElement.name") == "Income"  # focus moved to the field
    assert page.locator('.field.is-invalid').count() == 1
    _shot(page, "error.png")

    # editing the field clears its mark; without the interception the prediction goes through
    page.unroute(re.compile(r"/v1/models/[^/]+/predict$"))
    income.fill("150")
    assert income.get_attribute("aria-invalid") is None
    _predict(page)
    page.locator("#prediction-value").wait_for()
    assert page.locator('.field.is-invalid').count() == 0


def test_page_asks_for_the_api_key(browser, start_server, model_dir):
    key = "test-key-7f3a"
    url = start_server(model_dir, default_model="credit", api_key=key)
    assert httpx.get(f"{url}/v1/models").status_code == 401

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    try:
        page.goto(url + "/")
        key_input = page.get_by_label("API key", exact=True)
        key_input.wait_for()
        assert page.evaluate("document.activeElement.id") == "api-key"
        assert "API key needed" in page.locator("#server-status").inner_text()
        _shot(page, "api-key.png")

        key_input.fill("wrong-key")
        key_input.press("Enter")
        page.locator("#key-message.is-error").wait_for()
        assert "did not accept" in page.locator("#key-message").inner_text()

        key_input.fill(key)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Income", exact=True).wait_for()
        assert page.locator("#key-panel").is_hidden()
        assert page.evaluate("sessionStorage.getItem('takeoff.apiKey')") == key

        page.get_by_role("button", name="Fill example").click()
        with page.expect_request(re.compile(r"/predict$")) as sent:
            page.get_by_role("button", name="Predict").click()
        assert sent.value.headers.get("authorization") == f"Bearer {key}"
        page.locator("#prediction-value").wait_for()
        assert page.locator("#prediction-value").inner_text() in {"good", "bad"}

        # the report sits behind the key too: the page fetches it with the key into a new tab
        with context.expect_page() as opened:
            page.get_by_role("link", name=re.compile("Open full report")).click()
        report = opened.value
        report.wait_for_url(re.compile(r"^blob:"))
        assert "report" in report.title().lower()
        report.close()

        # a reload in the same tab keeps the key: no prompt
        page.reload()
        page.get_by_label("Income", exact=True).wait_for()
        assert page.locator("#key-panel").is_hidden()
    finally:
        context.close()
    assert not js_errors, f"uncaught JavaScript errors on the page: {js_errors}"


# ----------------------------------------------------------------------------- recommenders
@pytest.fixture(scope="module")
def rec_url(start_server, rec_dir) -> str:
    return start_server(rec_dir)  # "movies" (a recommender) beside "cancer" (a table)


def test_page_recommends_for_a_user(page, rec_url, rec_bundle):
    import takeoff

    model = takeoff.load(rec_bundle)
    page.goto(rec_url + "/")
    picker = page.get_by_label("Model", exact=True)
    picker.locator("option[value=movies]").wait_for(state="attached")
    picker.select_option("movies")
    user = page.get_by_label("User ID", exact=True)
    user.wait_for()
    assert page.locator("#predict-form").is_hidden() and page.locator("#result-card").is_hidden()
    assert "Recommendation" in page.locator("#model-summary").inner_text()
    assert "NDCG@10" in page.locator("#model-info").inner_text()

    first = model.log.users[0]
    user.fill(first)
    page.locator("#recommend-card").get_by_label("How many", exact=True).fill("8")
    with page.expect_request(re.compile(r"/v1/models/movies/recommend$")) as sent:
        page.get_by_role("button", name="Recommend").click()
    assert json.loads(sent.value.post_data) == {"user": int(first), "k": 8, "exclude_seen": True}
    rows = page.locator(".rec-list .rec-item")
    rows.first.wait_for()
    expected = model.recommend(first, k=8)
    assert rows.count() == 8
    assert [rows.nth(i).get_attribute("data-item") for i in range(8)] == [str(i) for i in expected.items]
    labels = [rows.nth(i).locator(".rec-label").inner_text() for i in range(8)]
    assert all(labels) and labels != [str(i) for i in expected.items]  # titles, not bare IDs
    assert page.locator("#rec-result-title").inner_text() == f"Top 8 for user {first}"
    _shot(page, "recommend.png")

    # "Similar" on a row asks for the items like it
    with page.expect_response(re.compile(r"/similar-items$")) as answered:
        rows.first.locator(".rec-more").click()
    assert answered.value.status == 200
    page.wait_for_function("document.querySelector('#rec-result-title').textContent.startsWith('Most like')")
    similar = model.similar_items(expected.items[0], k=8).items
    assert [rows.nth(i).get_attribute("data-item") for i in range(rows.count())] == [str(i) for i in similar]
    assert page.get_by_label("Item ID", exact=True).input_value() == str(expected.items[0])

    # an unknown user gets the popular items and the note; an unknown item is marked
    user.fill("someone-new")
    page.get_by_role("button", name="Recommend").click()
    page.locator(".rec-result .notes").wait_for()
    assert "not in the training data" in page.locator(".rec-result .notes").inner_text()
    item = page.get_by_label("Item ID", exact=True)
    item.fill("no-such-film")
    page.get_by_role("button", name="Similar items").click()
    page.locator("#rec-result [role=alert]").wait_for()
    assert item.get_attribute("aria-invalid") == "true"
    assert "not in the training data" in page.locator("#rec-result [role=alert]").inner_text()

    # phone-wide: nothing wider than the screen; then back to the table model's form
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    picker.select_option("cancer")
    page.locator("#fields .field").first.wait_for()
    assert page.locator("#recommend-card").is_hidden() and page.locator("#predict-form").is_visible()


# ----------------------------------------------------------------------------- search indexes
FAQ_ROWS = [
    ("How do I reset my password?", "Use 'Forgot password' on the sign-in page."),
    ("How can I get a refund for my order?", "Refunds reach your card within 5 days."),
    ("How long does shipping take?", "3 to 5 working days."),
    ("How do I cancel my subscription?", "Account > Subscription > Cancel plan."),
    ("Where can I download my invoices?", "Account > Billing > Invoices."),
]


@pytest.fixture(scope="module")
def search_url(start_server, fixtures, tmp_path_factory):
    """A server over a dict: a FAQ search index (``faq``, as a SearchIndex object) beside a table model."""
    import pandas as pd

    import takeoff
    from takeoff.pipelines.search import build_index

    faq = pd.DataFrame({"question": [q for q, _ in FAQ_ROWS], "answer": [a for _, a in FAQ_ROWS],
                        "url": [f"https://help.example.com/{i}" for i in range(len(FAQ_ROWS))]})
    index = build_index(faq, text="question", answer="answer", embed_encoder=False,
                        out=tmp_path_factory.mktemp("web-search") / "faq")
    return start_server({"faq": index, "cancer": takeoff.load(fixtures / "bundle-v1")}, default_model="cancer")


def test_page_searches_an_index(page, search_url):
    page.goto(search_url + "/")
    picker = page.get_by_label("Model", exact=True)
    picker.locator("option[value=faq]").wait_for(state="attached")
    picker.select_option("faq")
    card = page.locator("#search-card")
    query = card.get_by_label("Query", exact=True)
    query.wait_for()
    assert page.url.endswith("#faq")
    assert page.locator("#predict-form").is_hidden() and page.locator("#result-card").is_hidden()
    assert page.locator("#recommend-card").is_hidden()
    assert card.get_by_label("How many", exact=True).input_value() == "5"
    assert "Search" in page.locator("#model-summary").inner_text()
    facts = page.locator("#model-info .facts > div").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.querySelector('dt').textContent, r.querySelector('dd').textContent]))")
    assert facts["Task"] == "Search" and facts["Rows"] == str(len(FAQ_ROWS))
    assert facts["Encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and facts["Searches"] == "question"

    # a reworded question finds the refund answer first
    query.fill("I want my money back")
    card.get_by_label("How many", exact=True).fill("3")
    with page.expect_request(re.compile(r"/v1/models/faq/search$")) as sent:
        page.get_by_role("button", name="Search", exact=True).click()
    assert json.loads(sent.value.post_data) == {"query": "I want my money back", "k": 3}
    hits = page.locator(".search-hits .search-hit")
    hits.first.wait_for()
    assert hits.count() == 3
    assert hits.first.get_attribute("data-row") == "1"
    assert hits.first.locator(".hit-text").inner_text() == FAQ_ROWS[1][0]
    assert hits.first.locator(".hit-answer").inner_text() == FAQ_ROWS[1][1]
    assert "help.example.com/1" in hits.first.locator(".hit-meta").inner_text()
    scores = [float(hits.nth(i).locator(".rec-score").inner_text()) for i in range(3)]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    expected = httpx.post(f"{search_url}/v1/models/faq/search", json={"query": "I want my money back", "k": 3}).json()
    assert [str(h["row"]) for h in expected["results"][0]["hits"]] == [hits.nth(i).get_attribute("data-row") for i in range(3)]
    assert "/v1/models/faq/search" in page.locator("#search-curl-code").text_content()
    _shot(page, "search.png")

    # errors: an empty query is caught on the page; a bad k comes back from the server and is marked
    query.fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    assert query.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "search-query"
    query.fill("refund")
    assert query.get_attribute("aria-invalid") is None

    def bad_k(route):
        route.continue_(post_data=json.dumps({"query": "refund", "k": 0}))

    page.route(re.compile(r"/v1/models/faq/search$"), bad_k)
    with page.expect_response(re.compile(r"/search$")) as answered:
        page.get_by_role("button", name="Search", exact=True).click()
    assert answered.value.status == 422
    page.locator("#search-result [role=alert]").wait_for()
    assert card.get_by_label("How many", exact=True).get_attribute("aria-invalid") == "true"
    page.unroute(re.compile(r"/v1/models/faq/search$"))

    # phone-wide: nothing wider than the screen; then back to the table model's form
    page.set_viewport_size({"width": 420, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    picker.select_option("cancer")
    page.locator("#fields .field").first.wait_for()
    assert page.locator("#search-card").is_hidden() and page.locator("#predict-form").is_visible()


@pytest.fixture(scope="module")
def image_url(start_server, datasets, tmp_path_factory):
    """A server over a small image-cnn bundle trained on real digits 0 and 1."""
    pytest.importorskip("PIL")
    import takeoff

    root = tmp_path_factory.mktemp("web-images")
    for label in ("0", "1"):
        (root / "data" / label).mkdir(parents=True)
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:30]:
            shutil.copy(path, root / "data" / label / path.name)
    takeoff.train(root / "data", target="label", family="image-cnn", time_budget=20, seed=0, out=root / "digits",
                  config={"models": {"image-cnn": {"width": 8, "flip": False, "epochs": 4}}, "refit": False})
    return start_server(root / "digits"), root / "data"


def test_page_predicts_from_a_dropped_image(page, image_url):
    url, data = image_url
    page.goto(url + "/")
    zone = page.locator(".drop-zone")
    zone.wait_for()
    assert "Drop an image" in zone.inner_text()
    assert page.locator(".field-image .kind").inner_text().lower() == "image"
    png = sorted((data / "1").glob("*.png"))[-1]
    page.locator("input[type=file]").set_input_files(str(png))
    page.locator(".drop-preview:not([hidden])").wait_for()
    assert png.name in zone.inner_text()

    sent = _predict(page)
    image = sent["records"][0]["image"]
    assert image.startswith("data:image/png;base64,")
    prediction = page.locator("#prediction-value")
    prediction.wait_for()
    answer = httpx.post(f"{url}/v1/predict", json={"records": [{"image": image}]}).json()
    assert prediction.inner_text() == str(answer["predictions"][0]["prediction"])
    _shot(page, "page-image.png")

    # a file that is not an image is refused on the page, before anything is sent
    notes = data.parent / "notes.txt"
    notes.write_text("not a picture")
    page.locator("input[type=file]").set_input_files(str(notes))
    error = page.locator(".field-image .field-error")
    error.wait_for()
    assert "not an image" in error.inner_text()
    # a dropped file (a real drag-and-drop event with a DataTransfer) fills the zone as well
    b64 = __import__("base64").b64encode(png.read_bytes()).decode()
    page.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.querySelector(".drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
    }""", b64)
    page.get_by_text("dropped.png — drop or click to replace").wait_for()
    again = _predict(page)
    assert again["records"][0]["image"] == image  # the same bytes, the same data: URI


# ----------------------------------------------------------------------------- generative models
@pytest.fixture(scope="module")
def chat_url(start_server, generate_bundle):
    """A server over the tiny generative model ("tiny") and an answer model ("faq", a test
    double of the answers pipeline's contract that cites two fixed sources)."""
    import takeoff
    from answer_double import FakeAnswerModel

    model = takeoff.load(generate_bundle)
    return start_server({"tiny": model, "faq": FakeAnswerModel(model)})


def _chat(page, text: str, max_tokens: int) -> None:
    page.get_by_label("Max tokens", exact=True).fill(str(max_tokens))
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def test_page_chats_with_a_generative_model(page, chat_url):
    page.goto(chat_url + "/#tiny")
    card = page.locator("#chat-card")
    card.wait_for()
    assert page.locator("#predict-form").is_hidden() and page.locator("#search-card").is_hidden()
    assert "Text generation" in page.locator("#model-summary").inner_text()

    # a long reply: its text shows while it is still being written, then Stop ends it
    with page.expect_request(re.compile(r"/v1/chat/completions$")) as sent:
        _chat(page, "How do I reset my password?", 2000)
    body = json.loads(sent.value.post_data)
    assert body["stream"] is True and body["model"] == "tiny" and body["messages"][-1]["role"] == "user"
    page.wait_for_function("() => { const t = document.querySelector('.chat-msg.is-streaming .chat-text');"
                           " return t !== null && t.textContent.length > 0; }")
    page.get_by_role("button", name="Stop").click()
    page.locator(".chat-msg.is-assistant .chat-meta", has_text="stopped").wait_for()

    # a short one: the page shows what the API answers to the same conversation
    with page.expect_request(re.compile(r"/v1/chat/completions$")) as sent:
        _chat(page, "And where is my parcel?", 12)
    body = json.loads(sent.value.post_data)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    meta = page.locator(".chat-msg.is-assistant .chat-meta").nth(1)
    meta.wait_for()
    assert "12 tokens" in meta.inner_text()
    shown = page.locator(".chat-msg.is-assistant .chat-text").nth(1).text_content()
    expected = httpx.post(f"{chat_url}/v1/chat/completions", json={**body, "stream": False}, timeout=60).json()
    assert shown == expected["choices"][0]["message"]["content"]
    assert "/v1/chat/completions" in page.locator("#chat-curl-code").text_content()
    _shot(page, "chat.png")


def test_page_lists_an_answer_models_sources(page, chat_url):
    page.goto(chat_url + "/#faq")
    page.locator("#chat-card").wait_for()
    _chat(page, "How many tokens may I ask for?", 6)
    cites = page.locator(".chat-cites li")
    cites.first.wait_for()
    assert cites.count() == 2
    assert "docs/serving.md" in cites.nth(0).inner_text() and "Limits" in cites.nth(0).inner_text()
    assert "Sources:" not in page.locator(".chat-msg.is-assistant .chat-text").text_content()  # listed, not repeated
    _shot(page, "chat-sources.png")

    page.get_by_label("Model", exact=True).select_option("tiny")  # another model: a fresh conversation
    page.locator(".chat-empty").wait_for()
    assert page.locator(".chat-msg").count() == 0
