// Loupe reviewer page: one pending item at a time from /admin/api/review, decisions posted
// with the session cookie and the X-Loupe-CSRF header, and the metrics drawn as inline SVG.
// Every value from the API reaches the page through textContent or attributes, never HTML.
"use strict";

(() => {
  const csrfMeta = document.querySelector('meta[name="loupe-csrf"]');
  const CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const SVG = "http://www.w3.org/2000/svg";
  const LIST_LIMIT = 200;
  const IMAGE_WIDTH = 1200;
  const THUMB_WIDTH = 480; // a crop candidate's thumbnail: three side by side, sharp at 2x
  // A fixed-quality JPEG: no q=auto search (seconds on a cold source) for a reviewer's look.
  const PREVIEW = { fm: "jpeg", q: "80" };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function imagePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function percent(value) {
    return value === null || value === undefined ? "n/a" : `${Math.round(value * 1000) / 10}%`;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(url, body, method) {
    const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method) {
      options.method = method;
      options.headers["X-Loupe-CSRF"] = CSRF;
    }
    if (body !== undefined) {
      options.method = method || "POST";
      options.headers["Content-Type"] = "application/json";
      options.headers["X-Loupe-CSRF"] = CSRF;
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    if (response.status === 401) {
      window.location.reload(); // the session ended: show the sign-in form
      throw new ApiError(401, "signed out");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_ignored) {
      data = null;
    }
    if (!response.ok) {
      const detail = (data && (data.detail || data.title)) || `HTTP ${response.status}`;
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  // -- the queue ----------------------------------------------------------------------------

  function Queue(root) {
    const filter = root.dataset.component || "all";
    const skipped = new Set();
    const ui = {
      counter: $("counter"),
      message: $("message"),
      item: $("item"),
      stage: $("stage"),
      picture: $("picture"),
      pictureNote: $("picture-note"),
      title: $("item-title"),
      ai: $("ai"),
      candidates: $("candidates"),
      crops: $("crops"),
      viewToggle: $("view-toggle"),
      viewToggleBox: $("view-toggle-box"),
      checks: $("checks"),
      draftBox: $("draft-box"),
      draft: $("draft"),
      reason: $("reason"),
      actions: $("actions"),
      empty: $("empty"),
      emptyText: $("empty-text"),
      restart: $("restart"),
      held: $("held"),
    };
    let current = null;
    let shownAt = 0;
    let waiting = null; // a decision held back until the reviewer gives a reason
    let busy = false;
    let outlines = false; // crops: thumbnails of each candidate, or outlines on the full image
    // Keys act only on an item the reviewer can see: until the shown item's pictures are in,
    // keys are held (a hint says so) and replayed on it, text into the field they opened.
    let ready = false;
    let readyAt = 0;
    let askedAt = 0; // when the reviewer last sent a decision (and started waiting)
    const held = [];
    let list = []; // the pending items of the last load, oldest first
    const prefetched = new Map(); // preview URL -> an <img> already loading it
    const off = new Set((root.dataset.off || "").split(" ").filter(Boolean));
    const waits = [];

    function say(text, tone) {
      ui.message.textContent = text;
      ui.message.className = `message${tone ? " " + tone : ""}`;
    }

    function showCount(pending) {
      const more = pending >= LIST_LIMIT ? "+" : "";
      ui.counter.textContent = pending === 0 ? "Nothing left" : `${pending}${more} left`;
      ui.counter.dataset.left = String(pending);
    }

    async function loadNext() {
      const query = new URLSearchParams({ status: "pending", limit: String(LIST_LIMIT) });
      if (filter !== "all") query.set("component", filter);
      let items;
      try {
        items = (await api(`/admin/api/review?${query}`)).items;
      } catch (error) {
        say(`Could not load the queue: ${error.message}`, "bad");
        current = null; // never leave keys to act on an item already decided
        ui.item.hidden = true;
        dropHeld();
        setReady(null);
        return;
      }
      if (filter === "all") items = items.filter((item) => !off.has(item.component));
      list = items;
      showCount(items.length);
      const next = items.find((item) => !skipped.has(item.id));
      if (next) {
        show(next);
        return;
      }
      current = null;
      setReady(null);
      ui.item.hidden = true;
      ui.empty.hidden = false;
      ui.restart.hidden = items.length === 0;
      ui.emptyText.textContent =
        items.length === 0
          ? `Nothing pending${filter === "all" ? "" : ` in ${filter}`}.`
          : `You skipped the ${items.length} remaining.`;
      root.dataset.itemId = "";
    }

    function fact(label, value) {
      ui.ai.append(el("dt", {}, label), el("dd", {}, value === null ? "n/a" : String(value)));
    }

    function pictureUrl(path) {
      // The admin preview: unsigned, and shown even while moderation holds the image.
      const query = new URLSearchParams({ w: String(IMAGE_WIDTH), ...PREVIEW });
      return `/admin/api/preview/${imagePath(path)}?${query}`;
    }

    function picture(url) {
      // The prefetched <img> for url when there is one (its pixels are in), else a new one.
      const found = prefetched.get(url);
      prefetched.delete(url);
      if (found) return found;
      const img = new Image();
      img.src = url;
      return img;
    }

    function urlsOf(item) {
      const urls = [pictureUrl(item.path)];
      if (item.component === "crop") {
        for (const candidate of ((item.payload || {}).candidates || []).slice(0, 3)) {
          urls.push(cropUrl(item.path, candidate));
        }
      }
      return urls;
    }

    function prefetchAfter(item) {
      // The next item's previews start loading now, so they are in when it is shown.
      const index = list.findIndex((entry) => entry.id === item.id);
      const next = list.slice(index + 1).find((entry) => !skipped.has(entry.id));
      const wanted = next ? urlsOf(next) : [];
      for (const url of [...prefetched.keys()]) {
        if (!wanted.includes(url)) prefetched.delete(url);
      }
      for (const url of wanted) {
        if (!prefetched.has(url) && ui.picture.getAttribute("src") !== url) {
          const img = new Image();
          img.src = url;
          prefetched.set(url, img);
        }
      }
    }

    function watchPicture(img) {
      img.addEventListener("load", () => {
        if (img === ui.picture) ui.pictureNote.hidden = true;
      });
      img.addEventListener("error", () => {
        if (img !== ui.picture) return;
        img.hidden = true;
        ui.pictureNote.hidden = false;
        ui.pictureNote.textContent = "The image could not be loaded.";
      });
    }

    function showImage(item) {
      ui.stage.querySelectorAll(".box").forEach((box) => box.remove());
      const url = pictureUrl(item.path);
      if (ui.picture.getAttribute("src") !== url) {
        const img = picture(url);
        img.id = "picture";
        watchPicture(img);
        ui.picture.replaceWith(img);
        ui.picture = img;
      }
      ui.picture.hidden = false;
      ui.picture.alt = `The image under review: ${item.path}`;
      const loaded = ui.picture.complete && ui.picture.naturalWidth > 0;
      ui.pictureNote.hidden = loaded;
      ui.pictureNote.textContent = "Loading the image…";
    }

    function settled(img) {
      if (img.complete) return Promise.resolve();
      return new Promise((resolve) => {
        img.addEventListener("load", resolve, { once: true });
        img.addEventListener("error", resolve, { once: true });
      });
    }

    function setReady(item) {
      ready = true;
      readyAt = performance.now();
      root.dataset.ready = item ? String(item.id) : "";
      if (item && askedAt) {
        // seconds the reviewer waited on the page for each of the last 50 items
        waits.push(Math.round(readyAt - askedAt) / 1000);
        if (waits.length > 50) waits.shift();
        root.dataset.waits = waits.join(",");
      }
      askedAt = 0;
      replayHeld();
    }

    function notReady() {
      ready = false;
      root.dataset.ready = "";
    }

    async function whenSeen(item) {
      // Ready once every picture the reviewer needs is loaded (or failed, which is shown).
      await Promise.all([ui.picture, ...ui.crops.querySelectorAll("img")].map(settled));
      if (current === item && !busy && !ready) {
        shownAt = performance.now(); // the review's seconds count from when it could be seen
        setReady(item);
      }
    }

    function sameRect(candidate, served) {
      return (
        Array.isArray(served) &&
        [candidate.x, candidate.y, candidate.width, candidate.height].every(
          (value, i) => value === served[i],
        )
      );
    }

    function cropUrl(path, candidate) {
      // The preview of exactly the candidate's rect: the crop as it would be served.
      const rect = [candidate.x, candidate.y, candidate.width, candidate.height].join(",");
      const query = new URLSearchParams({ rect, w: String(THUMB_WIDTH), ...PREVIEW });
      return `/admin/api/preview/${imagePath(path)}?${query}`;
    }

    function thumbnail(item, candidate, number) {
      const payload = item.payload;
      const shot = picture(cropUrl(item.path, candidate));
      shot.alt = `Candidate ${number}: the crop it would serve`;
      shot.dataset.rect = [candidate.x, candidate.y, candidate.width, candidate.height].join(",");
      // CSSOM, not a style attribute: the requested aspect, whatever the rect's rounding
      if (payload.w && payload.h) shot.style.aspectRatio = `${payload.w} / ${payload.h}`;
      const button = el(
        "button",
        {
          type: "button",
          className: "thumb",
          "data-candidate": String(number),
          "aria-label": `${number === 1 ? "Accept" : "Use"} candidate ${number}`,
        },
        el("kbd", { className: "key" }, String(number)),
        shot,
      );
      const served = sameRect(candidate, payload.served) ? " · served" : "";
      const reasons = el("ul", { className: "reasons" });
      for (const reason of candidate.reasons || []) reasons.append(el("li", {}, reason));
      return el(
        "figure",
        { className: `crop c${number}`, "data-candidate": String(number) },
        button,
        el(
          "figcaption",
          {},
          el(
            "strong",
            {},
            `${number === 1 ? "AI's pick" : `Candidate ${number}`}${served} · ` +
              `${candidate.strategy} · score ${candidate.score}`,
          ),
          reasons,
        ),
      );
    }

    function applyView() {
      const crop = Boolean(current && current.component === "crop");
      ui.viewToggleBox.hidden = !crop;
      ui.crops.hidden = !crop || outlines;
      ui.stage.hidden = crop && !outlines;
      root.dataset.cropView = crop ? (outlines ? "outlines" : "thumbnails") : "";
      ui.viewToggle.querySelector("span").textContent = outlines
        ? "Cropped thumbnails"
        : "Outlines on the full image";
      ui.viewToggle.setAttribute("aria-pressed", String(outlines));
    }

    function toggleView() {
      if (!current || current.component !== "crop") return;
      outlines = !outlines;
      applyView();
    }

    function drawCandidates(item) {
      const payload = item.payload;
      const source = payload.source || {};
      const candidates = payload.candidates || [];
      ui.candidates.replaceChildren();
      ui.crops.replaceChildren();
      ui.candidates.hidden = candidates.length === 0;
      if (!source.width || !source.height) return;
      candidates.slice(0, 3).forEach((candidate, index) => {
        const number = index + 1;
        ui.crops.append(thumbnail(item, candidate, number));
        const box = el("div", { className: `box c${number}`, "data-candidate": String(number) });
        // CSSOM, not a style attribute: allowed by the page's style-src 'self'
        box.style.left = `${(candidate.x / source.width) * 100}%`;
        box.style.top = `${(candidate.y / source.height) * 100}%`;
        box.style.width = `${(candidate.width / source.width) * 100}%`;
        box.style.height = `${(candidate.height / source.height) * 100}%`;
        box.append(el("span", {}, String(number)));
        ui.stage.append(box);
        const rect = `${candidate.x},${candidate.y} ${candidate.width}×${candidate.height}`;
        const why = (candidate.reasons || []).join(", ");
        const label = number === 1 ? "Accept" : "Use";
        const button = el(
          "button",
          { type: "button", "data-candidate": String(number) },
          el("kbd", {}, String(number)),
          ` ${label}`,
        );
        ui.candidates.append(
          el(
            "li",
            { className: `c${number}` },
            button,
            el(
              "span",
              {},
              `${number === 1 ? "AI's pick" : `Candidate ${number}`}` +
                `${sameRect(candidate, payload.served) ? " (served)" : ""}: ` +
                `${candidate.strategy}, score ${candidate.score}, rect ${rect}`,
              why ? el("span", { className: "why" }, ` (${why})`) : null,
            ),
          ),
        );
      });
    }

    function show(item) {
      notReady();
      current = item;
      waiting = null;
      const payload = item.payload || {};
      root.dataset.itemId = String(item.id);
      root.dataset.itemComponent = item.component;
      ui.empty.hidden = true;
      ui.item.hidden = false;
      ui.title.textContent = `#${item.id} · ${item.component} · ${item.path}`;
      ui.ai.replaceChildren();
      ui.checks.replaceChildren();
      ui.checks.hidden = true;
      ui.candidates.replaceChildren();
      ui.candidates.hidden = true;
      ui.crops.replaceChildren();
      ui.draftBox.hidden = true;
      ui.reason.value = "";
      showImage(item);

      if (item.component === "alt") {
        ui.draftBox.hidden = false;
        ui.draft.value = payload.draft || "";
        fact(
          "AI decided",
          payload.reason === "sampled"
            ? "published it (sampled for a human look)"
            : payload.draft
              ? "a draft, held for review"
              : "no text (it failed)",
        );
        fact("Confidence", payload.confidence === undefined ? null : percent(payload.confidence));
        fact("Why here", payload.reason || null);
        fact("Model", payload.model || null);
      } else if (item.component === "crop") {
        const top = (payload.candidates || [])[0];
        fact("AI decided", top ? `candidate 1 (${top.strategy})` : "no candidates");
        fact("Confidence", top ? `score ${top.score}` : null);
        fact("Where", `${payload.ctx || "any"} · ${payload.aspect} · ${payload.w}×${payload.h}`);
        if (payload.served) fact("Served rect", payload.served.join(", "));
        drawCandidates(item);
      } else if (item.component === "moderation") {
        fact("AI decided", payload.verdict || null);
        fact("NSFW score", payload.score === undefined ? null : payload.score);
        fact("Why here", payload.reason || null);
      } else if (item.component === "qa") {
        fact("AI decided", payload.result || (payload.passed ? "passed" : "failed"));
        fact("Variant", item.subject.split("|").slice(1).join("|") || null);
        if (payload.note) fact("Note", payload.note);
        for (const check of payload.checks || []) {
          ui.checks.append(
            el("li", { className: check.ok ? "ok" : "fail" }, `${check.name}: ${check.detail}`),
          );
        }
        ui.checks.hidden = ui.checks.childElementCount === 0;
      } else {
        fact("AI decided", "published without review (sampled for audit)");
        fact("Stratum", payload.stratum || null);
        fact("Processing", payload.processing || null);
        if (payload.policy) fact("Policy", payload.policy);
      }
      applyView();

      for (const button of ui.actions.querySelectorAll("button[data-action]")) {
        const action = button.dataset.action;
        button.hidden = action === "edit" && item.component !== "alt";
        button.disabled = action === "accept" && item.component === "alt" && !payload.draft;
      }
      if (document.activeElement && document.activeElement !== document.body) {
        document.activeElement.blur();
      }
      shownAt = performance.now();
      prefetchAfter(item);
      whenSeen(item);
    }

    function needReason(action, value) {
      waiting = { action, value };
      say("A reason is required when you override the AI: type it, then Enter to send.", "bad");
      ui.reason.focus();
    }

    async function send(action, value, overrides) {
      if (!current || busy) return;
      const reason = ui.reason.value.trim();
      if (overrides && !reason) {
        needReason(action, value);
        return;
      }
      const seconds = Math.round((performance.now() - shownAt) / 10) / 100;
      const body = { action, reason, seconds };
      if (value !== undefined) body.value = value;
      const item = current;
      busy = true;
      notReady(); // from here until the next item is seen, keys are held for it
      askedAt = performance.now();
      let next = false;
      try {
        await api(`/admin/api/review/${item.id}`, body);
        waiting = null;
        next = true;
        const done = { accept: "accepted", reject: "rejected", edit: "edited" }[action];
        say(`#${item.id} ${done} (${seconds}s).`, "good");
        root.dataset.lastSeconds = String(seconds);
        root.dataset.decisions = String(Number(root.dataset.decisions || "0") + 1);
        await loadNext();
      } catch (error) {
        if (error.status === 409 || error.status === 404) {
          say(`#${item.id} was already decided elsewhere.`, "bad");
          next = true;
          await loadNext();
        } else {
          dropHeld(); // they were meant for the next item: not for this one again
          if (error.status === 400 && /reason/i.test(error.message)) {
            needReason(action, value);
          } else {
            say(`Not saved: ${error.message}`, "bad");
          }
        }
      } finally {
        busy = false;
        if (!next && current === item) setReady(item);
        else if (current && current !== item) whenSeen(current);
        else if (!current) setReady(null);
      }
    }

    function accept() {
      if (!current) return;
      if (current.component === "alt") {
        const draft = ((current.payload || {}).draft || "").trim();
        if (ui.draft.value.trim() !== draft) {
          saveEdit(); // what the reviewer sees is what gets published
          return;
        }
        if (!draft) {
          say("There is no draft to accept: press e and write one.", "bad");
          return;
        }
      }
      send("accept", undefined, false);
    }

    function reject() {
      if (current) send("reject", undefined, true);
    }

    function startEdit() {
      if (!current) return;
      if (current.component === "alt") {
        ui.draft.focus();
        ui.draft.select();
        say("Editing: Ctrl+Enter saves.", "");
      } else if (current.component === "crop") {
        say("Pick a crop with 1, 2 or 3.", "");
      } else {
        say(`A ${current.component} item is accepted (a) or rejected (r).`, "");
      }
    }

    function saveEdit() {
      if (!current || current.component !== "alt") return;
      const text = ui.draft.value.trim();
      if (!text) {
        say("The alt text is empty: write one, or reject with r.", "bad");
        ui.draft.focus();
        return;
      }
      if (text === ((current.payload || {}).draft || "").trim()) {
        send("accept", undefined, false); // unchanged: the AI's draft stands
        return;
      }
      send("edit", { text }, true);
    }

    function pick(number) {
      if (!current || current.component !== "crop") return;
      const count = ((current.payload || {}).candidates || []).length;
      if (number > count) {
        say(`There is no candidate ${number}.`, "bad");
        return;
      }
      document.querySelectorAll("#stage .box, #crops .crop").forEach((shown) => {
        shown.classList.toggle("picked", shown.dataset.candidate === String(number));
      });
      if (number === 1) send("accept", undefined, false);
      else send("edit", { candidate: number }, true);
    }

    function skip() {
      if (!current) return;
      skipped.add(current.id);
      say(`Skipped #${current.id}.`, "");
      notReady();
      askedAt = performance.now();
      loadNext();
    }

    function retryWaiting() {
      if (!waiting) return false;
      const { action, value } = waiting;
      send(action, value, action !== "accept");
      return true;
    }

    function typingIn(target) {
      return (
        target instanceof HTMLElement &&
        (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
      );
    }

    function holdable(key) {
      // What a reviewer types: letters, digits, Enter, Backspace, Esc (not Tab, not Ctrl+R).
      if (key.alt) return false;
      if (key.ctrl) return key.key === "Enter";
      return key.key.length === 1 || ["Enter", "Backspace", "Escape"].includes(key.key);
    }

    function showHeld() {
      ui.held.hidden = held.length === 0;
      ui.held.textContent = held.length
        ? `Loading the next item: ${held.length} key${held.length > 1 ? "s" : ""} held ` +
          "for it, applied once it is shown."
        : "";
      root.dataset.held = String(held.length);
    }

    function dropHeld() {
      if (!held.length) return;
      held.length = 0;
      showHeld();
    }

    function replayHeld() {
      while (held.length && ready) {
        const key = held.shift();
        onKey(key, document.activeElement);
      }
      showHeld();
    }

    function typeInto(field, key) {
      // A held key replayed into the field it was typed for (the draft or the reason).
      const start = field.selectionStart;
      const end = field.selectionEnd;
      if (key.key === "Backspace") {
        const from = start === end ? Math.max(0, start - 1) : start;
        field.setRangeText("", from, end, "end");
      } else if (key.key === "Enter") {
        if (field.tagName === "TEXTAREA") field.setRangeText("\n", start, end, "end");
      } else {
        field.setRangeText(key.key, start, end, "end");
      }
    }

    function onKey(key, target) {
      // Returns whether the page used the key (the browser must then not).
      if (key.key === "Enter" && key.ctrl) {
        if (retryWaiting()) return true;
        if (target === ui.draft || (current && current.component === "alt")) saveEdit();
        return true;
      }
      if (typingIn(target)) {
        if (key.key === "Escape") {
          target.blur();
          return true;
        }
        if (key.key === "Enter" && target === ui.reason) {
          // the prompt and the legend: Enter in the reason sends the decision it waits for
          if (!retryWaiting()) {
            target.blur();
            say("Reason noted: now decide (a, r, 1-3).", "");
          }
          return true;
        }
        if (key.replay) typeInto(target, key);
        return false;
      }
      if (key.ctrl || key.alt || key.repeat) return false;
      const handlers = {
        a: () => (current && current.component === "crop" ? pick(1) : accept()),
        r: reject,
        e: startEdit,
        n: skip,
        o: toggleView,
        1: () => pick(1),
        2: () => pick(2),
        3: () => pick(3),
      };
      const handler = handlers[key.key.toLowerCase()];
      if (!handler) return false;
      handler();
      return true;
    }

    document.addEventListener("keydown", (event) => {
      const key = {
        key: event.key,
        ctrl: event.ctrlKey || event.metaKey,
        alt: event.altKey,
        repeat: event.repeat,
        replay: false,
      };
      if (!ready && holdable(key)) {
        // The item these keys are for is not on screen yet: hold them for it.
        event.preventDefault();
        if (!key.repeat) {
          held.push({ ...key, replay: true });
          showHeld();
        }
        return;
      }
      if (onKey(key, event.target)) event.preventDefault();
    });

    function unseen() {
      // A click, like a key, never acts on an item whose pictures are not in yet.
      if (ready) return false;
      say("The next item is still loading: decide once it is shown.", "bad");
      return true;
    }

    ui.actions.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || unseen()) return;
      const action = button.dataset.action;
      if (action === "accept") {
        if (current && current.component === "crop") pick(1);
        else accept();
      } else if (action === "reject") reject();
      else if (action === "edit") {
        if (document.activeElement === ui.draft) saveEdit();
        else startEdit();
      } else if (action === "skip") skip();
    });

    for (const list of [ui.candidates, ui.crops]) {
      list.addEventListener("click", (event) => {
        const button = event.target.closest("button[data-candidate]");
        if (button && !unseen()) pick(Number(button.dataset.candidate));
      });
    }

    ui.viewToggle.addEventListener("click", toggleView);

    ui.restart.addEventListener("click", () => {
      skipped.clear();
      loadNext();
    });

    watchPicture(ui.picture);

    loadNext();
  }

  // -- the metrics ------------------------------------------------------------------------

  function tile(value, label) {
    return el("div", { className: "tile" }, el("strong", {}, value), el("span", {}, label));
  }

  function bars(components) {
    const names = Object.keys(components);
    const group = 100;
    const width = names.length * group + 40;
    const height = 170;
    const base = 140;
    const top = 20;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": "Auto-accept and override rate per component",
    });
    for (const level of [0, 0.5, 1]) {
      const y = base - level * (base - top);
      chart.append(svg("line", { x1: 30, x2: width, y1: y, y2: y, class: "axis" }));
      chart.append(svg("text", { x: 0, y: y + 4 }, `${level * 100}%`));
    }
    names.forEach((name, index) => {
      const x = 40 + index * group;
      const values = [
        ["auto", components[name].auto_accept_rate],
        ["override", components[name].override_rate],
      ];
      values.forEach(([kind, value], k) => {
        const barX = x + k * 36;
        if (components[name].off) {
          // nothing to decide (no VLM for alt text): not a 0% of anything
          if (k === 0) chart.append(svg("text", { x: barX + 4, y: base - 4 }, "off"));
          return;
        }
        if (value === null || value === undefined) {
          chart.append(svg("text", { x: barX + 4, y: base - 4 }, "n/a"));
          return;
        }
        const h = Math.max(1, value * (base - top));
        const bar = svg("rect", {
          x: barX,
          y: base - h,
          width: 30,
          height: h,
          class: `bar-${kind}`,
        });
        bar.append(svg("title", {}, `${name} ${kind}: ${percent(value)}`));
        chart.append(bar, svg("text", { x: barX, y: base - h - 4 }, percent(value)));
      });
      chart.append(svg("text", { x, y: base + 18 }, name));
    });
    return chart;
  }

  function sparkline(trend) {
    const width = 300;
    const height = 70;
    const pad = 8;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "sparkline",
      role: "img",
      "aria-label": "Median seconds per review over time",
    });
    const max = Math.max(...trend) || 1;
    const step = trend.length > 1 ? (width - 2 * pad) / (trend.length - 1) : 0;
    const points = trend.map((value, i) => [
      pad + i * step,
      height - pad - (value / max) * (height - 2 * pad - 12),
    ]);
    if (points.length > 1) {
      const line = points.map((p) => p.join(",")).join(" ");
      chart.append(svg("polyline", { points: line, class: "spark" }));
    }
    const [lastX, lastY] = points[points.length - 1];
    chart.append(svg("circle", { cx: lastX, cy: lastY, r: 3.5, class: "spark-dot" }));
    const last = trend[trend.length - 1];
    chart.append(svg("text", { x: pad, y: 11 }, `max ${Math.max(...trend)}s · last ${last}s`));
    return chart;
  }

  async function Metrics() {
    const status = $("metrics-status");
    let data;
    try {
      data = await api("/admin/api/metrics");
    } catch (error) {
      status.textContent = `Could not load the metrics: ${error.message}`;
      status.className = "message bad";
      return;
    }
    status.textContent = "";
    const seconds = data.review_seconds || {};
    $("tiles").replaceChildren(
      tile(percent(data.auto_accept_rate), "auto-accepted by the AI"),
      tile(seconds.median === null ? "n/a" : `${seconds.median}s`, "median time per review"),
      tile(seconds.count ? String(seconds.count) : "n/a", "timed reviews"),
      tile(percent(data.post_publication_correction_rate), "corrected after publication"),
      tile(String(data.user_initiated_corrections || 0), "user-initiated corrections"),
    );
    const purges = data.purges || {};
    const failed = el("div", { className: "tile", id: "purges-failed" },
      el("strong", {}, String(purges.dead || 0)), el("span", {}, "CDN purges failed"));
    if (purges.dead) failed.classList.add("bad");
    $("tiles").append(
      el("div", { className: "tile", id: "purges-pending" },
        el("strong", {}, String(purges.pending || 0)), el("span", {}, "CDN purges pending")),
      failed,
    );
    const components = data.components || {};
    $("bars").replaceChildren(bars(components));
    const rows = Object.entries(components).map(([name, c]) =>
      el(
        "tr",
        { "data-component": name, "data-off": String(Boolean(c.off)) },
        el("td", {}, c.off ? `${name} (off)` : name),
        el("td", {}, c.off ? "off" : String(c.auto)),
        el("td", {}, c.off ? "off" : String(c.sent_to_review)),
        el("td", { className: "reviewed" }, String(c.reviewed)),
        el("td", {}, String(c.pending)),
      ),
    );
    document.querySelector("#component-table tbody").replaceChildren(...rows);
    const trend = seconds.trend || [];
    $("trend-hint").textContent = trend.length
      ? `Median of each ${seconds.trend_bucket} reviews, oldest first.`
      : "No timed reviews yet.";
    $("trend").replaceChildren(...(trend.length ? [sparkline(trend)] : []));
    document.body.dataset.metricsLoaded = "true";
  }

  // -- costs ------------------------------------------------------------------------------

  function money(value) {
    if (value === null || value === undefined) return "n/a";
    return value >= 1 ? value.toFixed(2) : String(Number(value.toPrecision(3)));
  }

  function dayBars(days, key, label) {
    const width = Math.max(300, days.length * 36 + 40);
    const height = 140;
    const base = 110;
    const top = 16;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "small",
      role: "img",
      "aria-label": `${label} per day`,
    });
    const max = Math.max(...days.map((d) => d[key])) || 1;
    days.forEach((day, index) => {
      const x = 30 + index * 36;
      const h = Math.max(1, (day[key] / max) * (base - top));
      const bar = svg("rect", { x, y: base - h, width: 28, height: h, class: "bar-auto" });
      bar.append(svg("title", {}, `${day.day}: ${label} ${money(day[key])}`));
      chart.append(bar, svg("text", { x, y: base + 14 }, day.day.slice(5)));
    });
    chart.append(svg("text", { x: 0, y: 11 }, `${label}, max ${money(max)}`));
    return chart;
  }

  async function Costs() {
    const hint = $("costs-hint");
    let data;
    try {
      data = await api("/admin/api/costs");
    } catch (error) {
      hint.textContent = `Could not load the costs: ${error.message}`;
      return;
    }
    const totals = data.totals;
    const needed = totals.inferences + totals.saved.total;
    const priced = Object.values(data.prices || {}).some((price) => price > 0);
    $("cost-tiles").replaceChildren(
      tile(priced ? money(data.cost_per_image) : "n/a", "cost per image"),
      tile(priced ? money(totals.cost) : "n/a", "estimated cost"),
      tile(needed ? percent(totals.saved.total / needed) : "n/a", "inferences saved by caching"),
      tile(priced ? money(totals.saved_cost) : "n/a", "saved by caching"),
      tile(`${totals.tokens_in} / ${totals.tokens_out}`, "VLM tokens in / out"),
    );
    hint.textContent = priced
      ? `Estimated from the configured prices, over ${data.images} images.`
      : "No prices configured (costs.* in loupe.toml): counts and seconds only.";
    const rows = Object.entries(data.components).map(([name, c]) =>
      el(
        "tr",
        { "data-component": name },
        el("td", {}, name),
        el("td", { className: "inferences" }, String(c.inferences)),
        el("td", {}, String(c.wall_s)),
        el("td", {}, String(c.cpu_s)),
        el("td", {}, String(c.saved.phash)),
        el("td", {}, String(c.saved.sizes)),
        el("td", {}, String(c.saved.reupload)),
        el("td", {}, priced ? money(c.cost) : "n/a"),
        el("td", {}, priced ? money(c.saved_cost) : "n/a"),
      ),
    );
    document.querySelector("#cost-table tbody").replaceChildren(...rows);
    const days = data.days || [];
    const key = priced ? "cost" : "inferences";
    $("cost-trend").replaceChildren(
      ...(days.length ? [dayBars(days, key, priced ? "cost" : "inferences")] : []),
    );
    document.body.dataset.costsLoaded = "true";
  }

  // -- calibration --------------------------------------------------------------------------

  function reliabilityDiagram(name, c) {
    // x: the AI's confidence, y: the share humans accepted as is; the diagonal is a perfectly
    // calibrated model, dot areas grow with the decisions in the bin.
    const size = 320;
    const pad = 34;
    const span = size - 2 * pad;
    const at = (x, y) => [pad + x * span, size - pad - y * span];
    const chart = svg("svg", {
      viewBox: `0 0 ${size} ${size}`,
      class: "small reliability",
      role: "img",
      "aria-label": `Reliability of ${name}: share accepted as is per confidence bin`,
      "data-component": name,
    });
    const [x0, y0] = at(0, 0);
    const [x1, y1] = at(1, 1);
    chart.append(svg("line", { x1: x0, y1: y0, x2: x1, y2: y0, class: "axis" }));
    chart.append(svg("line", { x1: x0, y1: y0, x2: x0, y2: y1, class: "axis" }));
    chart.append(svg("line", { x1: x0, y1: y0, x2: x1, y2: y1, class: "ideal" }));
    chart.append(svg("text", { x: x0, y: size - 6 }, "confidence"));
    chart.append(svg("text", { x: 2, y: y1 - 8 }, "accepted as is"));
    const max = Math.max(1, ...c.bins.map((b) => b.count));
    const points = [];
    for (const bin of c.bins) {
      if (bin.share_accepted === null) continue;
      const [x, y] = at((bin.low + bin.high) / 2, bin.share_accepted);
      points.push(`${x},${y}`);
      const dot = svg("circle", {
        cx: x,
        cy: y,
        r: 2 + 5 * Math.sqrt(bin.count / max),
        class: "spark-dot",
        "data-count": bin.count,
      });
      dot.append(
        svg("title", {}, `${bin.low}-${bin.high}: ${bin.accepted}/${bin.count} accepted as is`),
      );
      chart.append(dot);
    }
    if (points.length > 1) chart.append(svg("polyline", { points: points.join(" "), class: "measured" }));
    if (c.threshold !== null) {
      const [tx] = at(c.threshold, 0);
      const line = svg("line", { x1: tx, y1: y0, x2: tx, y2: y1, class: "threshold" });
      line.append(svg("title", {}, `proposed threshold ${c.threshold}`));
      chart.append(line);
    }
    return chart;
  }

  function calibrationText(c, target) {
    if (!c.decisions) return "No human decisions yet: n/a.";
    const now =
      c.current_threshold === null
        ? "every output is reviewed now"
        : `now ${c.current_threshold}: ${percent(c.current_auto_accept_rate)} auto-accepted`;
    if (c.threshold === null) {
      return `${c.decisions} decisions, ${percent(c.accepted_as_is)} accepted as is; no threshold reaches ${percent(target)} yet (${now}).`;
    }
    return (
      `${c.decisions} decisions (${c.sampled} sampled). At ${c.threshold} and above, ` +
      `${percent(c.precision)} of ${c.decisions_above} were accepted as is: ` +
      `${percent(c.auto_accept_rate)} of ${c.rate_of} would be auto-accepted (${now}).`
    );
  }

  async function Calibration() {
    const hint = $("calibration-hint");
    let data;
    try {
      data = await api("/admin/api/calibration");
    } catch (error) {
      hint.textContent = `Could not load the calibration: ${error.message}`;
      return;
    }
    hint.textContent =
      `Per confidence bin, the share of the AI's outputs humans accepted as is (the dashed ` +
      `diagonal is a perfectly calibrated model), and the lowest threshold reaching ` +
      `${percent(data.target_precision)}. ` +
      (data.apply
        ? "calibration.apply is on: proposed thresholds are applied and logged."
        : "Shown only: thresholds change with calibration.apply = true.");
    const figures = Object.entries(data.components).map(([name, c]) =>
      el(
        "figure",
        { className: "calibration", "data-component": name },
        reliabilityDiagram(name, c),
        el("figcaption", {}, el("strong", {}, name), " ", calibrationText(c, data.target_precision)),
      ),
    );
    $("reliability").replaceChildren(...figures);
    document.body.dataset.calibrationLoaded = "true";
  }

  // -- exception rules ----------------------------------------------------------------------

  async function Rules() {
    const status = $("rules-status");
    async function load() {
      const data = await api("/admin/api/rules");
      const rows = (data.rules || []).map((rule) => {
        const remove = el("button", { type: "button", className: "quiet" }, "Remove");
        remove.addEventListener("click", async () => {
          const query = new URLSearchParams({ prefix: rule.prefix, rule: rule.rule });
          try {
            await api(`/admin/api/rules?${query}`, undefined, "DELETE");
            status.textContent = `Removed ${rule.rule} on ${rule.prefix || "every source"}.`;
          } catch (error) {
            status.textContent = error.message;
          }
          await load();
        });
        return el(
          "tr",
          { "data-rule": `${rule.prefix}|${rule.rule}` },
          el("td", {}, rule.prefix || "(every source)"),
          el("td", {}, rule.rule),
          el("td", {}, rule.reason),
          el("td", {}, rule.reviewer),
          el("td", {}, remove),
        );
      });
      document.querySelector("#rule-table tbody").replaceChildren(...rows);
      document.body.dataset.rulesLoaded = String(rows.length);
    }
    $("rule-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {
        prefix: $("rule-prefix").value,
        rule: $("rule-name").value,
        reason: $("rule-reason").value,
      };
      try {
        await api("/admin/api/rules", body, "PUT");
        status.textContent = `Added ${body.rule} on ${body.prefix || "every source"}.`;
        $("rule-reason").value = "";
      } catch (error) {
        status.textContent = error.message;
      }
      await load();
    });
    await load();
  }

  // -- search -------------------------------------------------------------------------------

  async function Search() {
    const status = $("search-status");
    const fact = (name, value) => [el("dt", {}, name), el("dd", {}, value)];

    async function open(hit) {
      let data;
      try {
        data = await api(hit.decisions);
      } catch (error) {
        status.textContent = error.message;
        return;
      }
      $("source-decisions").hidden = false;
      $("source-title").textContent = data.path;
      $("source-thumb").src = data.thumbnail;
      $("source-thumb").alt = data.alt.text || data.path;
      const overrides = data.overrides.map((o) => `${o.aspect}: ${o.rect.join(",")} (${o.by})`);
      const rules = data.rules.map((r) => `${r.rule} on ${r.prefix || "every source"}`);
      $("source-facts").replaceChildren(
        ...fact("alt text", `${data.alt.text || data.alt.draft || "(none)"} [${data.alt.status}]`),
        ...fact("class", data.class || "?"),
        ...fact("faces", data.faces === null ? "?" : String(data.faces)),
        ...fact("moderation", data.moderation),
        ...fact("duplicate group", data.duplicate_group || "none"),
        ...fact("overrides", overrides.join("; ") || "none"),
        ...fact("rules", rules.join("; ") || "none"),
        ...fact("generation", String(data.generation)),
      );
      const rows = data.reviews.map((item) =>
        el(
          "tr",
          { "data-review": String(item.id) },
          el("td", {}, item.component),
          el("td", {}, item.status),
          el("td", {}, item.decision ? JSON.stringify(item.decision) : ""),
          el("td", {}, item.decided ? new Date(item.decided * 1000).toLocaleString() : ""),
        ),
      );
      document.querySelector("#source-reviews tbody").replaceChildren(...rows);
      document.body.dataset.sourceOpen = data.path;
    }

    $("search-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = new URLSearchParams({ q: $("search-q").value, limit: "50" });
      if ($("search-class").value) query.set("class", $("search-class").value);
      if ($("search-folder").value) query.set("folder", $("search-folder").value);
      let data;
      try {
        data = await api(`/admin/api/search?${query}`);
      } catch (error) {
        status.textContent = error.message;
        return;
      }
      status.textContent = `${data.results.length} sources`;
      const items = data.results.map((hit) => {
        const button = el(
          "button",
          { type: "button", className: "quiet", "data-path": hit.path },
          el("img", { src: hit.thumbnail, alt: "", width: "64", height: "64", loading: "lazy" }),
          el("strong", {}, hit.path),
          el("span", {}, hit.alt.text || "(no alt text)"),
        );
        button.addEventListener("click", () => open(hit));
        return el("li", {}, button);
      });
      $("search-results").replaceChildren(...items);
      document.body.dataset.searchResults = String(items.length);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const queue = $("queue");
    if (queue) Queue(queue);
    if ($("metrics")) Metrics();
    if ($("costs")) Costs();
    if ($("calibration")) Calibration();
    if ($("rules")) Rules();
    if ($("search")) Search();
  });
})();
