/* takeoff model server page: pick a model, fill its inputs, get a prediction (or, for a
 * recommender, enter a user or an item and get a ranked list; for a search index, type a
 * query and get the closest texts with their answers; for a generative model, chat: the reply
 * streams in from /v1/chat/completions, with an answer model's sources under it).
 * Plain DOM, no dependencies. Every value from the server goes in through textContent. */
"use strict";

(() => {
  const KEY_STORAGE = "takeoff.apiKey";
  const OTHER = "__other__";
  const TASK_NAMES = { binary: "Binary classification", multiclass: "Multiclass classification", multilabel: "Multilabel classification", regression: "Regression", recommend: "Recommendation", search: "Search", generate: "Text generation", answer: "Answers with sources" };
  const PRIMARY_METRIC = { binary: "roc_auc", multiclass: "log_loss", multilabel: "log_loss", regression: "rmse" };
  const METRICS = { // name -> [display name, what it means]; same words as the bundle's report
    roc_auc: ["ROC AUC", "ranking quality; 0.5 is chance"],
    pr_auc: ["PR AUC", "average precision, positive class"],
    accuracy: ["Accuracy", "share of rows predicted right"],
    balanced_accuracy: ["Balanced accuracy", "mean recall over classes"],
    f1: ["F1", "positive class"],
    macro_f1: ["Macro F1", "F1 averaged over classes"],
    log_loss: ["Log loss", "quality of the probabilities; lower is better"],
    brier: ["Brier score", "squared probability error; lower is better"],
    rmse: ["RMSE", "root mean squared error; lower is better"],
    mae: ["MAE", "mean absolute error; lower is better"],
    r2: ["R²", "share of variance explained"],
    users: ["Users evaluated", "held-out users the ranking metrics average over"],
  };
  const RANKING_METRICS = { // name@k -> [display name, what it means]
    ndcg: ["NDCG", "ranking quality of the held-out items; 1 is perfect"],
    hr: ["HR", "hit rate: share of users with a held-out item in the list"],
    map: ["MAP", "mean average precision"],
    mrr: ["MRR", "mean reciprocal rank"],
    coverage: ["Coverage", "share of the catalogue recommended to anyone"],
    precision: ["Precision", "share of the list that was held out"],
    recall: ["Recall", "share of the held-out items in the list"],
  };
  const FAMILY_NAMES = {
    lightgbm: "LightGBM", xgboost: "XGBoost", catboost: "CatBoost", mlp: "Neural net (MLP)", linear: "Linear",
    popular: "Most popular", itemknn: "Item k-NN", als: "ALS (matrix factorisation)", two_tower: "Two-tower network",
  };
  const KIND_HINTS = { numeric: "number", categorical: "category", boolean: "yes / no", datetime: "date & time", text: "text", image: "image" };
  const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
  const MAX_BARS = 12;
  const METHOD_NAMES = { treeshap: "TreeSHAP", integrated_gradients: "Integrated Gradients", occlusion: "occlusion" };

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  };

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE),
    models: [],
    model: null, // the picked model's details
    fields: new Map(), // input name -> control
    loadToken: 0,
    hasResult: false,
    busy: false,
  };

  /* ------------------------------------------------------------------ API */

  class ApiError extends Error {
    constructor(status, code, message, fields = []) {
      super(message);
      this.status = status;
      this.code = code;
      this.fields = fields;
    }
  }

  // Any call that meets a 401 waits here until the user gives a key, then is retried.
  let keyWaiters = [];

  async function api(path, { method = "GET", body } = {}) {
    for (;;) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (state.key) headers.Authorization = `Bearer ${state.key}`;
      let response;
      try {
        response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (error) {
        throw new ApiError(0, "network", "Could not reach the server. Check that `takeoff serve` is still running, then try again.");
      }
      const text = await response.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch { data = null; }
      if (response.status === 401) {
        await askForKey(state.key ? "The server did not accept that key. Check it and enter it again." : null);
        continue;
      }
      if (!response.ok) throw toApiError(response, data, text);
      return data;
    }
  }

  function toApiError(response, data, text) {
    const error = data && data.error;
    if (error && typeof error === "object") {
      return new ApiError(response.status, error.code, error.message || `The server answered ${response.status}.`,
        Array.isArray(error.fields) ? error.fields : []);
    }
    // FastAPI's own validation errors: {"detail": [{"loc": [...], "msg": "..."}]} or {"detail": "..."}
    if (data && Array.isArray(data.detail)) {
      const fields = data.detail.map((d) => ({
        field: (d.loc || []).filter((part) => part !== "body").map((p, i) => (typeof p === "number" ? `[${p}]` : (i ? `.${p}` : p))).join(""),
        problem: d.msg || "is not valid",
      }));
      return new ApiError(response.status, "invalid_request", "The request was not valid.", fields);
    }
    if (data && typeof data.detail === "string") return new ApiError(response.status, "error", data.detail);
    const snippet = (text || "").trim().slice(0, 200);
    return new ApiError(response.status, "http_error", `The server answered ${response.status} ${response.statusText}${snippet ? `: ${snippet}` : "."}`);
  }

  /* ------------------------------------------------------------------ API key */

  function askForKey(message) {
    showKeyPanel(message, true);
    setStatus("locked", "API key needed");
    return new Promise((resolve) => keyWaiters.push(resolve));
  }

  function showKeyPanel(message, focus) {
    const panel = $("key-panel");
    const text = $("key-message");
    if (!text.dataset.default) text.dataset.default = text.innerHTML;
    if (message) {
      text.textContent = message;
      text.classList.add("is-error");
    } else {
      text.innerHTML = text.dataset.default; // our own markup, restored
      text.classList.remove("is-error");
    }
    $("key-forget").hidden = !state.key;
    panel.hidden = false;
    const input = $("api-key");
    if (focus) {
      input.focus();
      input.select();
    }
  }

  function onKeySubmit(event) {
    event.preventDefault();
    const input = $("api-key");
    const key = input.value.trim();
    if (!key) {
      showKeyPanel("Enter a key to continue.", true);
      return;
    }
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("key-panel").hidden = true;
    $("key-button").hidden = false;
    const waiters = keyWaiters;
    keyWaiters = [];
    if (waiters.length) {
      setStatus("loading", "Connecting…");
      waiters.forEach((resolve) => resolve());
    } else if (!state.models.length) {
      loadModels();
    }
  }

  function forgetKey() {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    $("api-key").value = "";
    $("key-button").hidden = true;
    showKeyPanel(null, true);
    $("key-forget").hidden = true;
  }

  /* ------------------------------------------------------------------ formatting */

  function fmtNumber(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs >= 1e15 || abs < 1e-4)) return value.toExponential(3);
    if (Number.isInteger(value)) return value.toLocaleString();
    if (abs >= 1000) return value.toLocaleString(undefined, { maximumFractionDigits: 0 });
    if (abs >= 1) return value.toLocaleString(undefined, { maximumFractionDigits: 2 });
    return value.toLocaleString(undefined, { maximumSignificantDigits: 4 });
  }

  function fmtMetric(name, value) {
    const abs = Math.abs(value);
    if (["rmse", "mae"].includes(name) || abs >= 10) return fmtNumber(value);
    return value.toFixed(3);
  }

  // Server messages start in lower case ("required field is missing"); sentences here do not.
  const sentence = (text) => { const t = String(text || ""); return t.charAt(0).toUpperCase() + t.slice(1); };

  const fmtPercent = (p) => `${(p * 100).toFixed(1)}%`;

  // 85.36500000000001 -> 85.365: a median as a person would type it.
  const tidy = (value) => (typeof value === "number" && Number.isFinite(value) ? String(Number(value.toPrecision(6))) : "");

  function fmtDate(text) {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return String(text);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  const rankingMetric = (name) => {
    const match = /^([a-z_]+)@(\d+)$/.exec(name);
    return match && RANKING_METRICS[match[1]] ? [`${RANKING_METRICS[match[1]][0]}@${match[2]}`, RANKING_METRICS[match[1]][1]] : null;
  };
  const metricInfo = (name) => METRICS[name] || rankingMetric(name);
  const metricName = (name) => (metricInfo(name) && metricInfo(name)[0]) || name.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
  const isRecommender = (model) => Boolean(model) && model.task === "recommend";
  const isSearch = (model) => Boolean(model) && model.task === "search";
  const isGenerative = (model) => Boolean(model) && (model.task === "generate" || model.task === "answer");
  const modeOf = (model) => (isRecommender(model) ? "recommend" : isSearch(model) ? "search" : isGenerative(model) ? "chat" : "predict");
  const encoderName = (model) => (model.encoder && typeof model.encoder === "object" ? model.encoder.name : model.encoder);
  const familyName = (name) => FAMILY_NAMES[name] || name.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());

  /* ------------------------------------------------------------------ status + page errors */

  function setStatus(kind, text) {
    const status = $("server-status");
    status.dataset.state = kind;
    status.querySelector(".status-text").textContent = text;
  }

  const ICON_ALERT = () => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("class", "banner-icon");
    svg.setAttribute("aria-hidden", "true");
    svg.innerHTML = '<circle cx="10" cy="10" r="8.5" fill="none" stroke="currentColor" stroke-width="1.6"/>'
      + '<path d="M10 5.6v5.2" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/>'
      + '<circle cx="10" cy="14" r="1.1" fill="currentColor"/>';
    return svg;
  };

  function showPageError(message, retry) {
    const box = $("page-error");
    box.replaceChildren(ICON_ALERT(), el("div", { class: "banner-body" },
      el("b", { text: "Something went wrong. " }), message, " ",
      retry ? el("button", { class: "btn btn-ghost btn-small", type: "button", onclick: retry, text: "Try again" }) : null));
    box.hidden = false;
  }

  const hidePageError = () => { $("page-error").hidden = true; };

  /* ------------------------------------------------------------------ models */

  async function loadModels() {
    hidePageError();
    setStatus("loading", "Connecting…");
    try {
      const data = await api("/v1/models");
      state.models = (data && data.models) || [];
      state.defaultModel = (data && data.default) || null;
    } catch (error) {
      setStatus("error", "Offline");
      showPageError(error.message, loadModels);
      $("model-select").replaceChildren(el("option", { text: "No models" }));
      $("fields").replaceChildren(el("p", { class: "muted", text: "The inputs appear once the server answers." }));
      $("fields").removeAttribute("aria-busy");
      $("model-info").replaceChildren(el("p", { class: "muted", text: "No model loaded." }));
      return;
    }
    const count = state.models.length;
    setStatus("ok", `Connected · ${count} model${count === 1 ? "" : "s"}`);
    if (state.key) $("key-button").hidden = false;
    const select = $("model-select");
    if (!count) {
      select.replaceChildren(el("option", { text: "No models served" }));
      showPageError("The server is running but serves no models. Start it with `takeoff serve BUNDLE_OR_DIR`.");
      return;
    }
    select.replaceChildren(...state.models.map((m) => el("option", {
      value: m.name,
      text: m.default && count > 1 ? `${m.name}  (default)` : m.name,
    })));
    const wanted = decodeURIComponent(location.hash.slice(1));
    const pick = state.models.find((m) => m.name === wanted) || state.models.find((m) => m.name === state.defaultModel)
      || state.models.find((m) => m.default) || state.models[0];
    select.value = pick.name;
    select.disabled = false;
    await loadModel(pick.name);
  }

  async function loadModel(name) {
    const token = ++state.loadToken;
    hidePageError();
    const previous = currentValues();
    $("fields").setAttribute("aria-busy", "true");
    setFormEnabled(false);
    renderSummary(state.models.find((m) => m.name === name));
    let model;
    try {
      model = await api(`/v1/models/${encodeURIComponent(name)}`);
    } catch (error) {
      if (token !== state.loadToken) return;
      showPageError(`Could not load model “${name}”: ${error.message}`, () => loadModel(name));
      return;
    }
    if (token !== state.loadToken) return; // the user picked another model meanwhile
    state.model = model;
    if (location.hash.slice(1) !== encodeURIComponent(name)) {
      history.replaceState(null, "", `#${encodeURIComponent(name)}`);
    }
    document.title = `${model.name} · takeoff`;
    renderSummary(model);
    setMode(modeOf(model));
    if (isRecommender(model)) {
      state.fields = new Map();
      renderRecommender(model);
    } else if (isSearch(model)) {
      state.fields = new Map();
      renderSearch(model);
    } else if (isGenerative(model)) {
      state.fields = new Map();
      renderChat(model);
    } else {
      renderForm(model, previous);
      resetResult();
      updateCurl(exampleRecord(model));
    }
    renderModelInfo(model);
    $("footer-version").textContent = model.takeoff_version ? ` ${model.takeoff_version}` : "";
    setFormEnabled(true);
  }

  function renderSummary(model) {
    const box = $("model-summary");
    if (!model) { box.replaceChildren(); return; }
    const chips = [el("span", { class: "chip chip-accent", text: TASK_NAMES[model.task] || model.task })];
    if (isRecommender(model)) {
      if (model.columns && model.columns.item) {
        chips.push(el("span", { class: "chip" }, "ranks ", el("b", { text: model.columns.item }), " for ", el("b", { text: model.columns.user })));
      }
      if (typeof model.users === "number") chips.push(el("span", { class: "chip", text: `${fmtNumber(model.users)} users · ${fmtNumber(model.items)} items` }));
      box.replaceChildren(...chips);
      return;
    }
    if (isGenerative(model)) {
      if (model.base_model) chips.push(el("span", { class: "chip" }, "based on ", el("b", { text: model.base_model })));
      if (typeof model.context_length === "number") chips.push(el("span", { class: "chip", text: `${fmtNumber(model.context_length)}-token context` }));
      box.replaceChildren(...chips);
      return;
    }
    if (isSearch(model)) {
      const text = model.columns && model.columns.text;
      if (text) chips.push(el("span", { class: "chip" }, "searches ", el("b", { text })));
      if (typeof model.rows === "number") chips.push(el("span", { class: "chip", text: `${fmtNumber(model.rows)} rows` }));
      box.replaceChildren(...chips);
      return;
    }
    if (model.target) chips.push(el("span", { class: "chip" }, "predicts ", el("b", { text: model.target })));
    if (Array.isArray(model.classes) && model.classes.length) {
      const shown = model.classes.slice(0, 4).map(String).join(" · ");
      chips.push(el("span", { class: "chip", text: model.classes.length > 4 ? `${shown} · +${model.classes.length - 4}` : shown }));
    }
    box.replaceChildren(...chips);
  }

  /* ------------------------------------------------------------------ the form */

  function renderForm(model, previous) {
    state.fields = new Map();
    const inputs = model.inputs || [];
    const nodes = inputs.map((spec, index) => {
      const control = makeControl(spec, `f${index}`);
      state.fields.set(spec.name, control);
      if (previous.has(spec.name)) control.set(previous.get(spec.name));
      return control.node;
    });
    const fields = $("fields");
    fields.replaceChildren(...nodes);
    if (!inputs.length) fields.append(el("p", { class: "muted", text: "This model takes no inputs." }));
    fields.removeAttribute("aria-busy");
    const count = $("input-count");
    count.textContent = `${inputs.length} field${inputs.length === 1 ? "" : "s"}`;
    count.hidden = false;
  }

  function makeControl(spec, id) {
    const kind = spec.kind || (spec.type === "number" ? "numeric" : spec.type === "boolean" ? "boolean" : "text");
    const errorId = `${id}-error`;
    const error = el("div", { class: "field-error", id: errorId, "aria-live": "polite" });
    const hint = el("span", { class: "kind", "aria-hidden": "true", text: KIND_HINTS[kind] || kind });
    const wrap = el("div", { class: `field field-${kind}${kind === "text" || kind === "image" ? " field-wide" : ""}`, "data-field": spec.name });
    const control = { spec, kind, node: wrap };
    const changed = () => { clearFieldError(control); markStale(); };

    if (kind === "numeric") {
      const input = el("input", {
        id, type: "number", step: "any", inputmode: "decimal", name: spec.name,
        placeholder: spec.median !== undefined && spec.median !== null ? tidy(spec.median) : "",
        "aria-describedby": errorId,
        title: spec.median !== undefined && spec.median !== null ? `Typical value (training median): ${tidy(spec.median)}` : null,
      });
      input.addEventListener("input", changed);
      wrap.append(el("div", { class: "field-label" }, el("label", { for: id, text: spec.name }), hint), input, error);
      control.focus = () => input.focus();
      control.get = () => {
        if (input.validity.badInput) throw new FieldProblem("enter a number, or leave it empty");
        return input.value.trim() === "" ? null : Number(input.value);
      };
      control.set = (v) => { input.value = typeof v === "number" ? String(v) : v === null || v === undefined ? "" : String(v); };
      control.example = () => (tidy(spec.median) === "" ? null : Number(tidy(spec.median)));
      control.inputs = [input];
    } else if (kind === "categorical") {
      const categories = (spec.categories || []).map(String);
      const select = el("select", { id, name: spec.name, "aria-describedby": errorId },
        el("option", { value: "", text: "— not set —" }),
        categories.map((c) => el("option", { value: c, text: c })),
        el("option", { value: OTHER, text: "Other…" }));
      const other = el("input", {
        type: "text", class: "other-input", hidden: true, "aria-label": `Other value for ${spec.name}`,
        placeholder: "Type a value", autocomplete: "off", "aria-describedby": errorId,
      });
      const sync = () => {
        select.classList.toggle("is-empty", select.value === "");
        other.hidden = select.value !== OTHER;
      };
      select.addEventListener("change", () => {
        sync();
        if (select.value === OTHER) other.focus();
        changed();
      });
      other.addEventListener("input", changed);
      wrap.append(el("div", { class: "field-label" }, el("label", { for: id, text: spec.name }), hint), select, other, error);
      control.focus = () => (select.value === OTHER ? other : select).focus();
      control.get = () => {
        if (select.value === OTHER) return other.value.trim() === "" ? null : other.value.trim();
        return select.value === "" ? null : select.value;
      };
      control.set = (v) => {
        if (v === null || v === undefined || v === "") { select.value = ""; other.value = ""; }
        else if (categories.includes(String(v))) { select.value = String(v); other.value = ""; }
        else { select.value = OTHER; other.value = String(v); }
        sync();
      };
      control.example = () => (categories.length ? categories[0] : null);
      control.inputs = [select, other];
      sync();
    } else if (kind === "boolean") {
      const labelId = `${id}-label`;
      const radios = [["true", "Yes"], ["false", "No"], ["", "Not set"]].map(([value, text]) => {
        const radio = el("input", { type: "radio", name: id, value, "aria-describedby": errorId });
        radio.addEventListener("change", changed);
        return { radio, node: el("label", {}, radio, el("span", { text })) };
      });
      radios[2].radio.checked = true;
      const group = el("div", { class: "segmented", role: "radiogroup", "aria-labelledby": labelId, id },
        radios.map((r) => r.node));
      wrap.append(el("div", { class: "field-label" }, el("span", { class: "label", id: labelId, text: spec.name }), hint), group, error);
      const checked = () => radios.find((r) => r.radio.checked) || radios[2];
      control.focus = () => checked().radio.focus();
      control.get = () => ({ true: true, false: false })[checked().radio.value] ?? null;
      control.set = (v) => {
        const value = v === true || v === "true" ? "true" : v === false || v === "false" ? "false" : "";
        radios.forEach((r) => { r.radio.checked = r.radio.value === value; });
      };
      control.example = () => null;
      control.inputs = radios.map((r) => r.radio);
    } else if (kind === "image") {
      // a drop zone (or click / Enter to choose a file); the image travels as a data: URI in
      // the JSON record, which the server decodes exactly as a base64 field
      const file = el("input", { id, type: "file", accept: "image/*", class: "sr-only", name: spec.name,
        "aria-describedby": errorId });
      const preview = el("img", { class: "drop-preview", alt: "", hidden: true });
      const prompt = el("span", { class: "drop-prompt", text: "Drop an image here, or click to choose one" });
      const zone = el("label", { class: "drop-zone", for: id, tabindex: "0", role: "button",
        "aria-label": `Image for ${spec.name}: drop a file or press Enter to choose one` }, preview, prompt);
      let dataUri = null;
      const show = (uri, name) => {
        dataUri = uri;
        preview.hidden = !uri;
        if (uri) preview.src = uri; else preview.removeAttribute("src");
        prompt.textContent = uri ? `${name || "image"} — drop or click to replace` : "Drop an image here, or click to choose one";
        zone.classList.toggle("has-image", Boolean(uri));
      };
      const take = (chosen) => {
        if (!chosen) return;
        if (chosen.type && !chosen.type.startsWith("image/")) {
          setFieldError(control, `${chosen.name} is not an image (${chosen.type})`);
          return;
        }
        if (chosen.size > MAX_IMAGE_BYTES) {
          setFieldError(control, `${chosen.name} is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MB`);
          return;
        }
        const reader = new FileReader();
        reader.onload = () => { show(String(reader.result), chosen.name); changed(); };
        reader.onerror = () => setFieldError(control, `could not read ${chosen.name}`);
        reader.readAsDataURL(chosen);
      };
      file.addEventListener("change", () => take(file.files && file.files[0]));
      zone.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); file.click(); }
      });
      zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("is-dragging"); });
      zone.addEventListener("dragleave", () => zone.classList.remove("is-dragging"));
      zone.addEventListener("drop", (event) => {
        event.preventDefault();
        zone.classList.remove("is-dragging");
        take(event.dataTransfer && event.dataTransfer.files[0]);
      });
      wrap.append(el("div", { class: "field-label" }, el("span", { class: "label", text: spec.name }), hint), file, zone, error);
      control.focus = () => zone.focus();
      control.get = () => dataUri;
      control.set = (v) => {
        const uri = typeof v === "string" && v.startsWith("data:image/") ? v : null;
        show(uri, null);
        if (!uri) file.value = "";
      };
      control.example = () => null;
      control.inputs = [file, zone];
    } else {
      const isDate = kind === "datetime";
      const input = isDate
        ? el("input", { id, type: "datetime-local", step: "1", name: spec.name, "aria-describedby": errorId })
        : el("textarea", { id, name: spec.name, rows: "3", placeholder: "Type or paste the text", "aria-describedby": errorId });
      input.addEventListener("input", changed);
      wrap.append(el("div", { class: "field-label" }, el("label", { for: id, text: spec.name }), hint), input, error);
      control.focus = () => input.focus();
      control.get = () => {
        if (input.validity && input.validity.badInput) throw new FieldProblem("enter a complete date and time, or leave it empty");
        return input.value.trim() === "" ? null : input.value;
      };
      control.set = (v) => {
        if (v === null || v === undefined) { input.value = ""; return; }
        // datetime-local takes "YYYY-MM-DDTHH:MM[:SS]"; an ISO string with a zone is cut to that
        input.value = isDate ? String(v).replace(" ", "T").slice(0, 19) : String(v);
      };
      control.example = () => null;
      control.inputs = [input];
    }
    control.error = error;
    return control;
  }

  class FieldProblem extends Error {}

  function currentValues() {
    const values = new Map();
    for (const [name, control] of state.fields) {
      try {
        const value = control.get();
        if (value !== null) values.set(name, value);
      } catch { /* an unparsable entry is not carried over */ }
    }
    return values;
  }

  function exampleRecord(model) {
    const record = {};
    for (const spec of model.inputs || []) {
      const control = state.fields.get(spec.name);
      record[spec.name] = control ? control.example() : null;
    }
    return record;
  }

  function fillExample() {
    for (const control of state.fields.values()) {
      control.set(control.example());
      clearFieldError(control);
    }
    markStale();
    const first = state.fields.values().next().value;
    if (first) first.focus();
  }

  function clearForm() {
    for (const control of state.fields.values()) {
      control.set(null);
      clearFieldError(control);
    }
    resetResult();
  }

  function setFormEnabled(enabled) {
    $("recommend").disabled = !enabled || state.busy;
    $("similar").disabled = !enabled || state.busy;
    $("search").disabled = !enabled || state.busy;
    $("chat-send").disabled = !enabled || state.busy;
    $("fill-example").disabled = !enabled;
    $("clear-form").disabled = !enabled;
    $("predict").disabled = !enabled || state.busy;
    $("model-select").disabled = state.models.length === 0;
  }

  function setFieldError(control, problem) {
    control.node.classList.add("is-invalid");
    control.error.textContent = sentence(problem);
    control.inputs.forEach((input) => input.setAttribute("aria-invalid", "true"));
  }

  function clearFieldError(control) {
    if (!control.node.classList.contains("is-invalid")) return;
    control.node.classList.remove("is-invalid");
    control.error.textContent = "";
    control.inputs.forEach((input) => input.removeAttribute("aria-invalid"));
  }

  const clearAllFieldErrors = () => state.fields.forEach(clearFieldError);

  // "records[0].Income" -> "Income"; names may hold dots or spaces, so only the prefix is cut.
  function fieldNameOf(path) {
    const text = String(path || "");
    const name = text.replace(/^(body\.)?records\[\d+\]\.?/, "");
    if (state.fields.has(name)) return name;
    if (state.fields.has(text)) return text;
    return null;
  }

  /* ------------------------------------------------------------------ predict */

  async function predict(event) {
    if (event) event.preventDefault();
    if (state.busy || !state.model) return;
    clearAllFieldErrors();
    const record = {};
    const problems = [];
    for (const [name, control] of state.fields) {
      try {
        record[name] = control.get();
      } catch (problem) {
        setFieldError(control, problem.message);
        problems.push(control);
      }
    }
    if (problems.length) {
      showResultError(`${problems.length === 1 ? "One field needs" : `${problems.length} fields need`} fixing before predicting.`, []);
      problems[0].focus();
      return;
    }
    const model = state.model;
    state.record = record;
    setBusy(true);
    updateCurl(record);
    const started = performance.now();
    try {
      const data = await api(`/v1/models/${encodeURIComponent(model.name)}/predict`, { method: "POST", body: { records: [record] } });
      if (state.model !== model) return;
      renderResult(model, data, Math.round(performance.now() - started));
      revealResult();
    } catch (error) {
      if (state.model !== model) return;
      const unplaced = [];
      let firstInvalid = null;
      for (const item of error.fields || []) {
        const name = fieldNameOf(item.field);
        if (name) {
          const control = state.fields.get(name);
          setFieldError(control, item.problem || "is not valid");
          firstInvalid = firstInvalid || control;
        } else {
          unplaced.push(item);
        }
      }
      showResultError(error.message, unplaced, error.status, Boolean(firstInvalid));
      if (firstInvalid) firstInvalid.focus();
      else revealResult();
    } finally {
      setBusy(false);
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    const button = $("predict");
    button.classList.toggle("is-busy", busy);
    button.disabled = busy || !state.model;
    button.setAttribute("aria-busy", String(busy));
    button.querySelector(".btn-label").textContent = busy ? "Predicting…" : "Predict";
    const result = $("result");
    result.setAttribute("aria-busy", String(busy));
    if (busy) result.dataset.state = "loading";
  }

  let emptyResult = null; // the page's own empty state, kept to put back

  function resetResult() {
    state.hasResult = false;
    $("result-meta").textContent = "";
    const result = $("result");
    result.dataset.state = "empty";
    result.replaceChildren(emptyResult.cloneNode(true));
  }

  function markStale() {
    const result = $("result");
    if (!state.hasResult || result.dataset.state === "stale") return;
    result.dataset.state = "stale";
    result.querySelector(".answer")?.after(el("p", { class: "stale-note", text: "Inputs changed — press Predict to update." }));
  }

  function showResultError(message, unplaced, status, marked) {
    state.hasResult = false;
    $("result-meta").textContent = status ? `HTTP ${status}` : "";
    const result = $("result");
    result.dataset.state = "error";
    const list = unplaced.length
      ? el("ul", {}, unplaced.map((f) => el("li", {}, f.field ? el("code", { text: f.field }) : null, f.field ? ": " : "", f.problem || "")))
      : null;
    result.replaceChildren(el("div", { class: "banner banner-error", role: "alert" }, ICON_ALERT(),
      el("div", { class: "banner-body" }, el("div", { text: sentence(message) }), list)),
      marked ? el("p", { class: "result-hint", text: "The fields marked in red say what to change. Fix them and press Predict again." }) : null);
  }

  function renderResult(model, data, ms) {
    const prediction = (data && data.predictions && data.predictions[0]) || {};
    const task = data.task || model.task;
    const value = prediction.prediction;
    const probabilities = prediction.probabilities || null;
    const version = data.version ?? model.version;
    $("result-meta").textContent = [version !== undefined && version !== null ? (/^\d+(\.\d+)*$/.test(String(version)) ? `v${version}` : `version ${version}`) : null, `${ms} ms`].filter(Boolean).join(" · ");

    const parts = [];
    const isRegression = task === "regression";
    const chosen = Array.isArray(value) ? value.map(String) : [String(value)];  // multilabel: a list of labels
    const shown = Array.isArray(value) ? (value.length ? value.join(", ") : "no label")
      : isRegression && typeof value === "number" ? fmtNumber(value) : value === null || value === undefined ? "—" : String(value);
    let note = null;
    if (Array.isArray(value)) {
      note = "each label is given when its probability reaches the label's threshold, tuned in training";
    } else if (!isRegression && probabilities && value !== null && value !== undefined && probabilities[String(value)] !== undefined) {
      note = `${fmtPercent(probabilities[String(value)])} probability`;
    }
    parts.push(el("div", { class: "answer", "data-testid": "prediction" },
      el("div", { class: "answer-caption", text: model.target ? `Predicted ${model.target}` : "Prediction" }),
      el("div", { class: "answer-value", id: "prediction-value", title: String(value), text: shown }),
      note ? el("div", { class: "answer-note", text: note }) : null));

    if (probabilities) {
      const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
      const top = entries.slice(0, MAX_BARS);
      const rest = entries.slice(MAX_BARS);
      const rows = top.map(([label, p]) => barRow(label, p, chosen.includes(label)));
      if (rest.length && !Array.isArray(value)) {  // label probabilities do not add up: no "others" bar
        rows.push(barRow(`${rest.length} other classes`, rest.reduce((sum, [, p]) => sum + p, 0), false));
      }
      parts.push(el("ul", { class: "bars", "aria-label": "Probability of each class" }, rows));
      if (task === "binary" && typeof model.threshold === "number" && Array.isArray(model.classes) && model.classes.length === 2) {
        parts.push(el("p", { class: "threshold-note" },
          "“", String(model.classes[1]), "” is predicted when its probability is at least ",
          el("b", { text: fmtPercent(model.threshold).replace(".0%", "%") }), " (the threshold tuned in training)."));
      }
    }

    if (model.task !== "recommend" && model.task !== "search") {
      const record = state.record;
      parts.push(el("div", { class: "explain", id: "explanation" },
        el("button", { class: "btn btn-secondary btn-small", type: "button", id: "explain", text: "Explain",
                       title: "Which inputs drive this answer (POST /v1/models/NAME/explain)",
                       onclick: (event) => explainPrediction(model, record, event.currentTarget) })));
    }

    const warnings = (data.warnings || []).map((w) => (typeof w === "string" ? w : w && (w.message || JSON.stringify(w))));
    if (warnings.length) {
      parts.push(el("div", { class: "warnings", role: "status" },
        el("div", { class: "warnings-title", text: warnings.length === 1 ? "Warning" : `${warnings.length} warnings` }),
        el("ul", {}, warnings.map((w) => el("li", { text: w })))));
    }
    const result = $("result");
    result.dataset.state = "done";
    result.replaceChildren(...parts);
    state.hasResult = true;
    // let the bars grow from zero
    requestAnimationFrame(() => requestAnimationFrame(() => {
      result.querySelectorAll(".bar-fill[data-width]").forEach((fill) => { fill.style.width = fill.dataset.width; });
    }));
  }

  // The columns that drive one prediction (POST /v1/models/{name}/explain), as bars growing
  // right (raise the explained output) or left (lower it).
  async function explainPrediction(model, record, button) {
    const box = $("explanation");
    button.disabled = true;
    button.textContent = "Explaining…";
    try {
      const data = await api(`/v1/models/${encodeURIComponent(model.name)}/explain`, { method: "POST", body: { record, top: 8 } });
      if (state.model !== model || !box.isConnected) return;
      const scale = Math.max(1e-12, ...data.attributions.map((a) => Math.abs(a.attribution || 0)));
      const rows = data.attributions.map((a) => {
        const value = a.attribution || 0;
        const width = `${(50 * Math.abs(value)) / scale}%`;
        return el("li", { class: "explain-row", "data-column": a.column },
          el("span", { class: "bar-label", title: a.column, text: a.column }),
          el("span", { class: "explain-track" }, el("span", { class: `explain-fill ${value >= 0 ? "up" : "down"}`, style: `width:${width}` })),
          el("span", { class: "bar-pct", text: `${value >= 0 ? "+" : "−"}${fmtNumber(Math.abs(value))}` }));
      });
      box.replaceChildren(
        el("p", { class: "explain-title", text: `What moved the ${data.explained} (${data.method.map((m) => METHOD_NAMES[m] || m).join(" + ")})` }),
        el("ul", { class: "explain-list", "aria-label": "Attribution of each input column" }, rows));
    } catch (error) {
      if (!box.isConnected) return;
      box.replaceChildren(el("div", { class: "banner banner-error", role: "alert" }, ICON_ALERT(),
        el("div", { class: "banner-body", text: sentence(error.message) })));
    }
  }

  // On one-column layouts the answer sits below the form: bring it into view.
  function revealResult() {
    const card = $("result-card");
    const box = card.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight - 120) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      card.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
    }
  }

  function barRow(label, p, predicted) {
    const pct = fmtPercent(p);
    return el("li", { class: `bar-row${predicted ? " is-predicted" : ""}`, "data-label": label, "data-probability": String(p) },
      el("span", { class: "bar-label", title: label, text: label }),
      el("span", {
        class: "bar-track", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100",
        "aria-valuenow": (p * 100).toFixed(1), "aria-label": `${label}${predicted ? " (predicted)" : ""}`,
      }, el("span", { class: "bar-fill", "data-width": `${Math.max(0, Math.min(1, p)) * 100}%` })),
      el("span", { class: "bar-pct", text: pct }));
  }

  /* ------------------------------------------------------------------ code snippet */

  function updateCurl(record) {
    const model = state.model;
    if (!model) return;
    const url = `${location.origin}/v1/models/${encodeURIComponent(model.name)}/predict`;
    const body = JSON.stringify({ records: [record] }, null, 2).replace(/'/g, "'\\''");
    const lines = [`curl -X POST ${url} \\`, "  -H 'Content-Type: application/json' \\"];
    if (state.key) lines.push("  -H \"Authorization: Bearer $TAKEOFF_API_KEY\" \\");
    lines.push(`  -d '${body}'`);
    $("curl-code").textContent = lines.join("\n");
    $("curl").hidden = false;
  }

  const copyCurl = () => copyText($("curl-code"), $("copy-curl"));

  async function copyText(code, button) {
    const text = code.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1600);
  }

  /* ------------------------------------------------------------------ recommenders */

  // "predict": the inputs form and the prediction card; "recommend": one card with a user form,
  // a similar-items form and the ranked list; "search": one card with a query form and the hits.
  function setMode(mode) {
    const tabular = mode === "predict";
    document.querySelector(".inputs-card:not(.recommend-card):not(.search-card):not(.chat-card)").hidden = !tabular;
    $("result-card").hidden = !tabular;
    $("recommend-card").hidden = mode !== "recommend";
    $("search-card").hidden = mode !== "search";
    $("chat-card").hidden = mode !== "chat";
    if (mode !== "chat") stopChat();
    document.querySelector(".skip").setAttribute("href", `#${{ predict: "inputs", recommend: "recommend", search: "search", chat: "chat" }[mode]}-title`);
  }

  let emptyRecResult = null; // the card's own empty state, kept to put back

  function renderRecommender(model) {
    const users = model.example_users || [];
    const items = model.example_items || [];
    $("rec-user").placeholder = users.length ? `e.g. ${users[0]}` : "a user ID";
    $("sim-item").placeholder = items.length ? `e.g. ${items[0]}` : "an item ID";
    $("rec-k").value = String(Math.min(Math.max(Number(model.k) || 10, 1), 1000));
    ["rec-user", "rec-k", "sim-item"].forEach((id) => clearRecError(id));
    const count = $("catalogue-count");
    count.textContent = typeof model.items === "number" ? `${fmtNumber(model.items)} items` : "";
    count.hidden = !count.textContent;
    $("rec-result-title").textContent = "Results";
    $("rec-result-meta").textContent = "";
    const result = $("rec-result");
    result.dataset.state = "empty";
    result.replaceChildren(emptyRecResult.cloneNode(true));
    $("rec-curl").hidden = true;
  }

  // "42" -> 42 (IDs that look like integers are sent as JSON numbers; "42" would work too)
  function toId(text) {
    const value = String(text).trim();
    return /^-?\d{1,15}$/.test(value) ? Number(value) : value;
  }

  function setRecError(id, problem) {
    const input = $(id);
    input.closest(".field").classList.add("is-invalid");
    input.setAttribute("aria-invalid", "true");
    $(`${id}-error`).textContent = sentence(problem);
  }

  function clearRecError(id) {
    const input = $(id);
    input.closest(".field").classList.remove("is-invalid");
    input.removeAttribute("aria-invalid");
    $(`${id}-error`).textContent = "";
  }

  function readK() {
    const input = $("rec-k");
    const k = Number(input.value);
    if (input.value.trim() === "" || !Number.isInteger(k) || k < 1 || k > 1000) {
      setRecError("rec-k", "enter a whole number from 1 to 1000");
      return null;
    }
    return k;
  }

  async function recommendFor(event) {
    if (event) event.preventDefault();
    const text = $("rec-user").value.trim();
    clearRecError("rec-user");
    clearRecError("rec-k");
    if (!text) setRecError("rec-user", "enter a user ID");
    const k = readK();
    if (!text || k === null) {
      $(text ? "rec-k" : "rec-user").focus();
      return;
    }
    const body = { user: toId(text), k, exclude_seen: !$("rec-include-seen").checked };
    await askRecommender("recommend", body, { user: "rec-user", k: "rec-k" }, (data) => {
      const answer = (data.recommendations || [])[0] || { items: [], notes: [] };
      return { title: `Top ${k} for user ${text}`, items: answer.items || [], notes: answer.notes || [] };
    });
  }

  async function similarTo(event) {
    if (event) event.preventDefault();
    const text = $("sim-item").value.trim();
    clearRecError("sim-item");
    clearRecError("rec-k");
    if (!text) setRecError("sim-item", "enter an item ID");
    const k = readK();
    if (!text || k === null) {
      $(text ? "rec-k" : "sim-item").focus();
      return;
    }
    await askRecommender("similar-items", { item: toId(text), k }, { item: "sim-item", k: "rec-k" }, (data) => ({
      title: `Most like item ${text}`, items: data.items || [], notes: data.notes || [],
    }));
  }

  async function askRecommender(route, body, fieldIds, shape) {
    if (state.busy || !isRecommender(state.model)) return;
    const model = state.model;
    const button = $(route === "recommend" ? "recommend" : "similar");
    setRecBusy(true, button);
    updateRecCurl(route, body);
    const started = performance.now();
    try {
      const data = await api(`/v1/models/${encodeURIComponent(model.name)}/${route}`, { method: "POST", body });
      if (state.model !== model) return;
      renderRecList(model, data, shape(data), Math.round(performance.now() - started));
    } catch (error) {
      if (state.model !== model) return;
      let marked = null;
      const unplaced = [];
      for (const item of error.fields || []) {
        const id = fieldIds[String(item.field).replace(/\[\d+\]$/, "")];
        if (id) {
          setRecError(id, item.problem || "is not valid");
          marked = marked || id;
        } else {
          unplaced.push(item);
        }
      }
      showRecError(error.message, unplaced, error.status);
      if (marked) $(marked).focus();
    } finally {
      setRecBusy(false, button);
    }
  }

  function setRecBusy(busy, button) {
    state.busy = busy;
    button.classList.toggle("is-busy", busy);
    button.setAttribute("aria-busy", String(busy));
    $("recommend").disabled = busy || !state.model;
    $("similar").disabled = busy || !state.model;
    const result = $("rec-result");
    result.setAttribute("aria-busy", String(busy));
    if (busy) result.dataset.state = "loading";
  }

  function showRecError(message, unplaced, status) {
    $("rec-result-title").textContent = "Results";
    $("rec-result-meta").textContent = status ? `HTTP ${status}` : "";
    const result = $("rec-result");
    result.dataset.state = "error";
    const list = unplaced.length
      ? el("ul", {}, unplaced.map((f) => el("li", {}, f.field ? el("code", { text: f.field }) : null, f.field ? ": " : "", f.problem || "")))
      : null;
    result.replaceChildren(el("div", { class: "banner banner-error", role: "alert" }, ICON_ALERT(),
      el("div", { class: "banner-body" }, el("div", { text: sentence(message) }), list)));
  }

  function renderRecList(model, data, answer, ms) {
    const version = data.version ?? model.version;
    $("rec-result-title").textContent = answer.title;
    $("rec-result-meta").textContent = [version ? `version ${version}` : null, `${ms} ms`].filter(Boolean).join(" · ");
    const scores = answer.items.map((row) => (typeof row.score === "number" ? row.score : 0));
    const top = Math.max(...scores, 0);
    const bottom = Math.min(...scores, 0);
    const span = top - bottom || 1;
    const itemColumn = (model.columns && model.columns.item) || "item";
    const rows = answer.items.map((row, index) => {
      const share = typeof row.score === "number" ? (row.score - bottom) / span : 0;
      const id = String(row.item);
      return el("li", { class: "rec-item", "data-item": id },
        el("span", { class: "rec-rank", text: String(index + 1) }),
        el("span", { class: "rec-main" },
          el("span", { class: "rec-label", title: row.label || id, text: row.label || id }),
          el("span", { class: "rec-id", text: row.label ? `${itemColumn} ${id}` : itemColumn })),
        el("span", { class: "bar-track", "aria-hidden": "true" },
          el("span", { class: "bar-fill", "data-width": `${Math.max(0.03, Math.min(1, share)) * 100}%` })),
        el("span", { class: "rec-score", title: `score ${row.score}`, text: fmtScore(row.score) }),
        el("button", {
          class: "btn btn-ghost btn-small rec-more", type: "button", "aria-label": `Items like ${row.label || id}`,
          onclick: () => { $("sim-item").value = id; similarTo(); },
        }, "Similar"));
    });
    const parts = [];
    if (rows.length) parts.push(el("ol", { class: "rec-list", "aria-label": answer.title }, rows));
    else parts.push(el("p", { class: "muted", text: "No items to show." }));
    if (answer.notes.length) {
      parts.push(el("div", { class: "warnings notes", role: "status" },
        el("div", { class: "warnings-title", text: answer.notes.length === 1 ? "Note" : `${answer.notes.length} notes` }),
        el("ul", {}, answer.notes.map((n) => el("li", { text: n })))));
    }
    const result = $("rec-result");
    result.dataset.state = "done";
    result.replaceChildren(...parts);
    requestAnimationFrame(() => requestAnimationFrame(() => {
      result.querySelectorAll(".bar-fill[data-width]").forEach((fill) => { fill.style.width = fill.dataset.width; });
    }));
  }

  // Scores compare within one list: enough digits to tell neighbours apart.
  function fmtScore(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "—";
    const abs = Math.abs(value);
    return abs >= 100 ? fmtNumber(value) : value.toFixed(abs < 1 ? 3 : 2);
  }

  function updateRecCurl(route, body) {
    const model = state.model;
    const url = `${location.origin}/v1/models/${encodeURIComponent(model.name)}/${route}`;
    const lines = [`curl -X POST ${url} \\`, "  -H 'Content-Type: application/json' \\"];
    if (state.key) lines.push("  -H \"Authorization: Bearer $TAKEOFF_API_KEY\" \\");
    lines.push(`  -d '${JSON.stringify(body).replace(/'/g, "'\\''")}'`);
    $("rec-curl-code").textContent = lines.join("\n");
    $("rec-curl").hidden = false;
  }

  /* ------------------------------------------------------------------ search indexes */

  let emptySearchResult = null; // the card's own empty state, kept to put back

  function renderSearch(model) {
    const examples = (model.example_texts || []).filter((t) => typeof t === "string" && t.trim()).slice(0, 3);
    $("search-query").placeholder = examples.length ? `e.g. ${examples[0]}` : "Type a question";
    $("search-k").value = "5";
    ["search-query", "search-k"].forEach((id) => clearRecError(id));
    const box = $("search-examples");
    box.replaceChildren(...(examples.length ? [el("span", { text: "Try:" }), ...examples.map((text) => el("button", {
      class: "btn btn-ghost btn-small", type: "button", title: text,
      onclick: () => { $("search-query").value = text; clearRecError("search-query"); searchFor(); },
    }, text))] : []));
    box.hidden = !examples.length;
    const count = $("index-count");
    count.textContent = typeof model.rows === "number" ? `${fmtNumber(model.rows)} rows` : "";
    count.hidden = !count.textContent;
    $("search-result-title").textContent = "Results";
    $("search-result-meta").textContent = "";
    const result = $("search-result");
    result.dataset.state = "empty";
    result.replaceChildren(emptySearchResult.cloneNode(true));
    $("search-curl").hidden = true;
  }

  async function searchFor(event) {
    if (event) event.preventDefault();
    if (state.busy || !isSearch(state.model)) return;
    const query = $("search-query").value.trim();
    clearRecError("search-query");
    clearRecError("search-k");
    if (!query) setRecError("search-query", "type a question or some text to search for");
    const kInput = $("search-k");
    const k = Number(kInput.value);
    const kOk = kInput.value.trim() !== "" && Number.isInteger(k) && k >= 1 && k <= 1000;
    if (!kOk) setRecError("search-k", "enter a whole number from 1 to 1000");
    if (!query || !kOk) {
      $(query ? "search-k" : "search-query").focus();
      return;
    }
    const model = state.model;
    const body = { query, k };
    setSearchBusy(true);
    updateSearchCurl(body);
    const started = performance.now();
    try {
      const data = await api(`/v1/models/${encodeURIComponent(model.name)}/search`, { method: "POST", body });
      if (state.model !== model) return;
      renderHits(model, data, query, Math.round(performance.now() - started));
    } catch (error) {
      if (state.model !== model) return;
      const fieldIds = { query: "search-query", k: "search-k" };
      let marked = null;
      const unplaced = [];
      for (const item of error.fields || []) {
        const id = fieldIds[String(item.field).replace(/\[\d+\]$/, "")];
        if (id) {
          setRecError(id, item.problem || "is not valid");
          marked = marked || id;
        } else {
          unplaced.push(item);
        }
      }
      showSearchError(error.message, unplaced, error.status);
      if (marked) $(marked).focus();
    } finally {
      setSearchBusy(false);
    }
  }

  function setSearchBusy(busy) {
    state.busy = busy;
    const button = $("search");
    button.classList.toggle("is-busy", busy);
    button.setAttribute("aria-busy", String(busy));
    button.disabled = busy || !state.model;
    button.querySelector(".btn-label").textContent = busy ? "Searching…" : "Search";
    const result = $("search-result");
    result.setAttribute("aria-busy", String(busy));
    if (busy) result.dataset.state = "loading";
  }

  function showSearchError(message, unplaced, status) {
    $("search-result-title").textContent = "Results";
    $("search-result-meta").textContent = status ? `HTTP ${status}` : "";
    const result = $("search-result");
    result.dataset.state = "error";
    const list = unplaced.length
      ? el("ul", {}, unplaced.map((f) => el("li", {}, f.field ? el("code", { text: f.field }) : null, f.field ? ": " : "", f.problem || "")))
      : null;
    result.replaceChildren(el("div", { class: "banner banner-error", role: "alert" }, ICON_ALERT(),
      el("div", { class: "banner-body" }, el("div", { text: sentence(message) }), list)));
  }

  const HIT_KEYS = new Set(["score", "text", "answer", "row"]);

  function renderHits(model, data, query, ms) {
    const hits = ((data.results || [])[0] || {}).hits || [];
    const version = data.version ?? model.version;
    $("search-result-title").textContent = `Top ${hits.length} for “${query.length > 60 ? `${query.slice(0, 57)}…` : query}”`;
    $("search-result-meta").textContent = [version ? `version ${String(version).slice(0, 12)}` : null, `${ms} ms`].filter(Boolean).join(" · ");
    const answerColumn = model.columns && model.columns.answer;
    const rows = hits.map((hit, index) => {
      const score = typeof hit.score === "number" ? hit.score : 0;
      const extra = Object.entries(hit).filter(([key, value]) => !HIT_KEYS.has(key) && value !== null && value !== undefined && value !== "");
      const hasAnswer = hit.answer !== null && hit.answer !== undefined && hit.answer !== "";
      return el("li", { class: "rec-item search-hit", "data-row": String(hit.row) },
        el("span", { class: "rec-rank", text: String(index + 1) }),
        el("span", { class: "rec-main" },
          el("span", { class: "rec-label hit-text", text: String(hit.text ?? "") }),
          hasAnswer ? el("span", { class: "hit-answer", title: answerColumn || null, text: String(hit.answer) }) : null,
          el("span", { class: "hit-meta" },
            el("span", {}, el("b", { text: "row" }), ` ${hit.row}`),
            extra.map(([key, value]) => el("span", {}, el("b", { text: key }), ` ${typeof value === "object" ? JSON.stringify(value) : value}`)))),
        el("span", {
          class: "bar-track", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": String(Math.max(0, score)),
          "aria-label": `Similarity of hit ${index + 1}`,
        }, el("span", { class: "bar-fill", "data-width": `${Math.max(0.03, Math.min(1, score)) * 100}%` })),
        el("span", { class: "rec-score", title: `cosine similarity ${hit.score}`, text: fmtScore(hit.score) }));
    });
    const result = $("search-result");
    result.dataset.state = "done";
    result.replaceChildren(rows.length
      ? el("ol", { class: "rec-list search-hits", "aria-label": "Search results, best first" }, rows)
      : el("p", { class: "muted", text: "The index holds no rows." }));
    requestAnimationFrame(() => requestAnimationFrame(() => {
      result.querySelectorAll(".bar-fill[data-width]").forEach((fill) => { fill.style.width = fill.dataset.width; });
    }));
  }

  function updateSearchCurl(body) {
    const model = state.model;
    const url = `${location.origin}/v1/models/${encodeURIComponent(model.name)}/search`;
    const lines = [`curl -X POST ${url} \\`, "  -H 'Content-Type: application/json' \\"];
    if (state.key) lines.push("  -H \"Authorization: Bearer $TAKEOFF_API_KEY\" \\");
    lines.push(`  -d '${JSON.stringify(body).replace(/'/g, "'\\''")}'`);
    $("search-curl-code").textContent = lines.join("\n");
    $("search-curl").hidden = false;
  }

  /* ------------------------------------------------------------------ generative models (chat) */

  // The conversation of the picked model: what is sent with each message (OpenAI's messages).
  const chat = { messages: [], controller: null, model: null };
  let emptyChatLog = null; // the log's own empty state, kept to put back

  function renderChat(model) {
    stopChat();
    chat.messages = [];
    chat.model = model.name;
    const limit = typeof model.max_tokens_limit === "number" ? model.max_tokens_limit : 2048;
    const maxInput = $("chat-max-tokens");
    maxInput.max = String(limit);
    maxInput.value = String(Math.min(256, limit));
    $("chat-title").textContent = model.task === "answer" ? "Ask" : "Chat";
    $("chat-hint").textContent = model.task === "answer"
      ? "The answer streams in as the model writes it, with the sources it was drawn from listed under it."
      : "The reply appears as the model writes it. The whole conversation is sent with each message.";
    const context = $("chat-context");
    context.textContent = typeof model.context_length === "number" ? `${fmtNumber(model.context_length)} tokens` : "";
    context.hidden = !context.textContent;
    $("chat-log").replaceChildren(emptyChatLog.cloneNode(true));
    clearRecError("chat-input");
    $("chat-curl").hidden = true;
    updateChatCurl({ model: model.name, messages: [{ role: "user", content: "Hello" }], max_tokens: Number(maxInput.value) });
  }

  function chatBubble(role, text) {
    const node = el("div", { class: `chat-msg ${role === "user" ? "is-user" : "is-assistant"}` },
      el("span", { class: "chat-role", text: role === "user" ? "You" : "Model" }),
      el("div", { class: "chat-text", text }));
    const log = $("chat-log");
    const empty = log.querySelector(".chat-empty");
    if (empty) empty.remove();
    log.append(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function readChatNumber(id, low, high, whole, problem) {
    const input = $(id);
    const value = Number(input.value);
    const ok = input.value.trim() !== "" && Number.isFinite(value) && value >= low && value <= high && (!whole || Number.isInteger(value));
    if (!ok) showPageError(problem);
    return ok ? value : null;
  }

  async function sendChat(event) {
    if (event) event.preventDefault();
    if (state.busy || !isGenerative(state.model)) return;
    const model = state.model;
    const text = $("chat-input").value.trim();
    clearRecError("chat-input");
    if (!text) {
      setRecError("chat-input", "type a message first");
      $("chat-input").focus();
      return;
    }
    const limit = Number($("chat-max-tokens").max) || 2048;
    const maxTokens = readChatNumber("chat-max-tokens", 1, limit, true, `Max tokens must be a whole number from 1 to ${limit}.`);
    const temperature = readChatNumber("chat-temperature", 0, 2, false, "Temperature must be a number from 0 to 2.");
    if (maxTokens === null || temperature === null) return;
    hidePageError();
    chat.messages.push({ role: "user", content: text });
    chatBubble("user", text);
    $("chat-input").value = "";
    const body = { model: model.name, messages: chat.messages.slice(), max_tokens: maxTokens, temperature };
    updateChatCurl(body);
    const reply = chatBubble("assistant", "");
    reply.classList.add("is-streaming");
    const shown = reply.querySelector(".chat-text");
    const controller = new AbortController();
    chat.controller = controller;
    setChatBusy(true);
    const started = performance.now();
    let content = "";
    let finish = null;
    let citations = null;
    let usage = null;
    let failed = null;
    try {
      const response = await openStream("/v1/chat/completions", { ...body, stream: true, stream_options: { include_usage: true } }, controller.signal);
      for await (const chunk of serverEvents(response)) {
        if (chunk.error) { failed = chunk.error.message || "The generation failed."; break; }
        if (chunk.usage) usage = chunk.usage;
        const choice = (chunk.choices || [])[0];
        if (!choice) continue;
        const delta = choice.delta || {};
        if (typeof delta.content === "string" && delta.content) {
          content += delta.content;
          shown.textContent = content;
          const log = $("chat-log");
          log.scrollTop = log.scrollHeight;
        }
        if (Array.isArray(delta.citations)) citations = delta.citations;
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    } catch (error) {
      if (error.name === "AbortError") finish = "stopped";
      else failed = error.message;
    } finally {
      reply.classList.remove("is-streaming");
      if (chat.controller === controller) chat.controller = null;
      setChatBusy(false);
    }
    if (chat.model !== model.name) return; // another model was picked meanwhile
    // an answer model's text ends with its sources; they are listed below it instead
    const footer = citations && citations.length ? content.lastIndexOf("\n\nSources:\n") : -1;
    const answer = footer >= 0 ? content.slice(0, footer) : content;
    shown.textContent = answer;
    if (failed) {
      chat.messages.pop(); // not answered: the next message is sent without it
      reply.append(el("div", { class: "banner banner-error", role: "alert" }, ICON_ALERT(), el("div", { class: "banner-body", text: sentence(failed) })));
      return;
    }
    chat.messages.push({ role: "assistant", content: answer });
    if (citations && citations.length) reply.append(renderCitations(citations));
    const ms = Math.round(performance.now() - started);
    const facts = [usage ? `${usage.completion_tokens} tokens` : null, `${ms} ms`,
      finish === "length" ? "stopped at max tokens" : finish === "stopped" ? "stopped" : null];
    reply.append(el("span", { class: "chat-meta", text: facts.filter(Boolean).join(" · ") }));
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  }

  function renderCitations(citations) {
    return el("div", { class: "chat-cites", role: "note", "aria-label": "Sources" },
      el("div", { class: "section-label", text: "Sources" }),
      el("ol", {}, citations.map((c) => el("li", { class: "cite" },
        el("span", { class: "cite-source", text: String(c.source ?? "") }),
        c.section ? el("span", { class: "cite-section", text: ` — ${c.section}` }) : null,
        typeof c.score === "number" ? el("span", { class: "cite-score", text: ` (${fmtScore(c.score)})` }) : null,
        c.text ? el("span", { class: "cite-text", text: String(c.text) }) : null))));
  }

  // POST a JSON body and return the streaming response; a 401 asks for the key and retries.
  async function openStream(path, body, signal) {
    for (;;) {
      const headers = { Accept: "text/event-stream", "Content-Type": "application/json" };
      if (state.key) headers.Authorization = `Bearer ${state.key}`;
      let response;
      try {
        response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), signal });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        throw new ApiError(0, "network", "Could not reach the server. Check that `takeoff serve` is still running, then try again.");
      }
      if (response.status === 401) {
        await askForKey(state.key ? "The server did not accept that key. Check it and enter it again." : null);
        continue;
      }
      if (!response.ok) {
        const text = await response.text();
        let data = null;
        try { data = text ? JSON.parse(text) : null; } catch { data = null; }
        throw toApiError(response, data, text);
      }
      return response;
    }
  }

  // The JSON payloads of a server-sent event stream ("data: {...}" events), until "data: [DONE]".
  async function* serverEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
          if (!data) continue;
          if (data === "[DONE]") return;
          yield JSON.parse(data);
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  function stopChat() {
    if (chat.controller) chat.controller.abort();
  }

  function setChatBusy(busy) {
    state.busy = busy;
    const button = $("chat-send");
    button.classList.toggle("is-busy", busy);
    button.setAttribute("aria-busy", String(busy));
    button.disabled = busy || !state.model;
    button.querySelector(".btn-label").textContent = busy ? "Writing…" : "Send";
    $("chat-stop").hidden = !busy;
  }

  function updateChatCurl(body) {
    const url = `${location.origin}/v1/chat/completions`;
    const lines = [`curl -N ${url} \\`, "  -H 'Content-Type: application/json' \\"];
    if (state.key) lines.push("  -H \"Authorization: Bearer $TAKEOFF_API_KEY\" \\");
    lines.push(`  -d '${JSON.stringify({ ...body, stream: true }).replace(/'/g, "'\\''")}'`);
    lines.push("", "# or with the openai package (pip install openai):",
      state.key ? "import os" : null, "from openai import OpenAI",
      `client = OpenAI(base_url="${location.origin}/v1", api_key=${state.key ? "os.environ[\"TAKEOFF_API_KEY\"]" : "\"unused\""})`,
      `reply = client.chat.completions.create(model=${JSON.stringify(body.model)}, messages=[{"role": "user", "content": "Hello"}])`);
    $("chat-curl-code").textContent = lines.filter((line) => line !== null).join("\n");
    $("chat-curl").hidden = false;
  }

  /* ------------------------------------------------------------------ model panel */

  function renderModelInfo(model) {
    const recommender = isRecommender(model);
    const search = isSearch(model);
    const columns = model.columns || {};
    const facts = [
      ["Task", TASK_NAMES[model.task] || model.task],
      ["Target", model.target],
      ["Rows", search && typeof model.rows === "number" ? fmtNumber(model.rows) : null],
      ["Searches", search ? columns.text : null],
      ["Answers", search ? columns.answer : null],
      ["Encoder", search ? encoderName(model) : null],
      ["Dimensions", search && typeof model.dim === "number" ? String(model.dim) : null],
      ["Base model", isGenerative(model) ? model.base_model : null],
      ["Fine-tuning", isGenerative(model) && model.method ? (model.method === "none" ? "none (the base model as it is)" : model.method) : null],
      ["Context", isGenerative(model) && typeof model.context_length === "number" ? `${fmtNumber(model.context_length)} tokens` : null],
      ["Most tokens per reply", isGenerative(model) && typeof model.max_tokens_limit === "number" ? fmtNumber(model.max_tokens_limit) : null],
      ["Family", recommender && model.family ? familyName(String(model.family)) : null],
      ["Users", recommender && typeof model.users === "number" ? fmtNumber(model.users) : null],
      ["Items", recommender && typeof model.items === "number" ? fmtNumber(model.items) : null],
      ["Interactions", recommender && typeof model.interactions === "number" ? fmtNumber(model.interactions) : null],
      ["Version", model.version],
      ["Created", model.created ? fmtDate(model.created) : null],
    ];
    if (typeof model.threshold === "number") facts.push(["Decision threshold", model.threshold.toFixed(3)]);
    if (model.takeoff_version) facts.push(["Trained with", `takeoff ${model.takeoff_version}`]);
    const parts = [el("dl", { class: "facts" }, facts.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: String(v) }))))];

    const metrics = Object.entries(model.metrics || {})
      .filter(([name, v]) => typeof v === "number" && Number.isFinite(v) && name !== "threshold");
    if (metrics.length) {
      const primary = recommender ? `ndcg@${model.k}` : PRIMARY_METRIC[model.task];
      metrics.sort((a, b) => (b[0] === primary) - (a[0] === primary));
      parts.push(el("div", {},
        el("div", { class: "section-label", text: "Validation metrics", title: recommender ? "Each user's last interaction held out" : null }),
        el("div", { class: "metrics" }, metrics.map(([name, v]) => el("div", {
          class: `metric${name === primary ? " is-primary" : ""}`, title: `${metricName(name)}: ${v}${metricInfo(name) ? ` (${metricInfo(name)[1]})` : ""}`,
        }, el("div", { class: "metric-name", text: metricName(name) }), el("div", { class: "metric-value", text: fmtMetric(name, v) }))))));
    }

    if (recommender && model.leaderboard && Object.keys(model.leaderboard).length) {
      const key = `ndcg@${model.k}`;
      const rows = Object.entries(model.leaderboard).filter(([, m]) => typeof m[key] === "number");
      const best = Math.max(...rows.map(([, m]) => m[key]), 1e-12);
      parts.push(el("div", {},
        el("div", { class: "section-label", text: rows.length > 1 ? `Families tried (${metricName(key)})` : "Model family" }),
        el("ul", { class: "members" }, rows.map(([family, m]) => el("li", { class: `member${family === model.family ? " is-chosen" : ""}` },
          el("span", { class: "member-name", text: familyName(family) + (rows.length > 1 && family === model.family ? " ✓" : "") }),
          el("span", { class: "bar-track", "aria-hidden": "true" },
            el("span", { class: "bar-fill", style: `width:${Math.max(0, m[key] / best) * 100}%` })),
          el("span", { class: "member-weight", title: `${metricName(key)} ${m[key]}`, text: m[key].toFixed(3) }))))));
    }

    const members = model.members || [];
    if (members.length) {
      parts.push(el("div", {},
        el("div", { class: "section-label", text: members.length > 1 ? "Blend of models" : "Model family" }),
        el("ul", { class: "members" }, members.map((m) => {
          const weight = typeof m.weight === "number" ? m.weight : null;
          return el("li", { class: "member" },
            el("span", { class: "member-name", text: familyName(String(m.family)) }),
            el("span", { class: "bar-track", "aria-hidden": "true" },
              el("span", { class: "bar-fill", style: `width:${weight === null ? 0 : weight * 100}%` })),
            el("span", { class: "member-weight", text: weight === null ? "" : `${Math.round(weight * 100)}%` }));
        }))));
    }

    if (model.report_url) {
      const link = el("a", { class: "report-link", href: model.report_url, target: "_blank", rel: "noopener" }, "Open full report");
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 16 16");
      svg.setAttribute("aria-hidden", "true");
      svg.innerHTML = '<path d="M6 3H3v10h10v-3M9 2h5v5M14 2 7.5 8.5" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/>';
      link.append(svg, el("span", { class: "sr-only", text: " (opens in a new tab)" }));
      link.addEventListener("click", (event) => openReport(event, model.report_url));
      parts.push(link);
    }
    $("model-info").replaceChildren(...parts);
  }

  // A plain link cannot send the API key, so with a key the report is fetched here and shown
  // from a blob URL. The tab is opened first, while the click still counts as the user's.
  async function openReport(event, url) {
    if (!state.key) return; // the link works as it is
    event.preventDefault();
    const tab = window.open("about:blank", "_blank");
    try {
      const response = await fetch(url, { headers: { Authorization: `Bearer ${state.key}` } });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const blob = new Blob([await response.text()], { type: "text/html" });
      const blobUrl = URL.createObjectURL(blob);
      if (tab) tab.location.href = blobUrl;
      else window.location.href = blobUrl;
      setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
    } catch (error) {
      if (tab) tab.close();
      showPageError(`Could not open the report: ${error.message}`);
    }
  }

  /* ------------------------------------------------------------------ start */

  function start() {
    emptyResult = $("result").firstElementChild.cloneNode(true);
    emptyRecResult = $("rec-result").firstElementChild.cloneNode(true);
    emptySearchResult = $("search-result").firstElementChild.cloneNode(true);
    emptyChatLog = $("chat-log").firstElementChild.cloneNode(true);
    $("chat-form").addEventListener("submit", sendChat);
    $("chat-input").addEventListener("input", () => clearRecError("chat-input"));
    $("chat-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendChat(event);
    });
    $("chat-stop").addEventListener("click", stopChat);
    $("chat-clear").addEventListener("click", () => { if (isGenerative(state.model)) renderChat(state.model); });
    $("copy-chat-curl").addEventListener("click", () => copyText($("chat-curl-code"), $("copy-chat-curl")));
    $("search-form").addEventListener("submit", searchFor);
    $("search-query").addEventListener("input", () => clearRecError("search-query"));
    $("search-k").addEventListener("input", () => clearRecError("search-k"));
    $("copy-search-curl").addEventListener("click", () => copyText($("search-curl-code"), $("copy-search-curl")));
    $("recommend-form").addEventListener("submit", recommendFor);
    $("similar-form").addEventListener("submit", similarTo);
    $("rec-user").addEventListener("input", () => clearRecError("rec-user"));
    $("sim-item").addEventListener("input", () => clearRecError("sim-item"));
    $("rec-k").addEventListener("input", () => clearRecError("rec-k"));
    $("copy-rec-curl").addEventListener("click", () => copyText($("rec-curl-code"), $("copy-rec-curl")));
    $("predict-form").addEventListener("submit", predict);
    $("predict-form").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) predict(event);
    });
    $("fill-example").addEventListener("click", fillExample);
    $("clear-form").addEventListener("click", clearForm);
    $("model-select").addEventListener("change", (event) => loadModel(event.target.value));
    $("key-form").addEventListener("submit", onKeySubmit);
    $("key-forget").addEventListener("click", forgetKey);
    $("key-button").addEventListener("click", () => {
      const panel = $("key-panel");
      if (!panel.hidden && !keyWaiters.length) { panel.hidden = true; return; }
      $("api-key").value = state.key || "";
      showKeyPanel(null, true);
    });
    $("copy-curl").addEventListener("click", copyCurl);
    window.addEventListener("hashchange", () => {
      const name = decodeURIComponent(location.hash.slice(1));
      if (state.models.some((m) => m.name === name) && (!state.model || state.model.name !== name)) {
        $("model-select").value = name;
        loadModel(name);
      }
    });
    loadModels();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
