// Ask: chat sessions, answers streamed as server-sent events (token, citation, done, error;
// tool_call/tool_result in tools sessions), confidence and abstention, clickable follow-ups,
// and citations that open their source with the exact quoted characters highlighted.

import { ApiError, events, get, post, query, send } from "./api.js";
import { $, describe, h, notify, when } from "./dom.js";

let current = null; // the open session's id
let streaming = null; // the AbortController of the answer being streamed

export function setUp() {
  $("#ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("#question").value.trim();
    if (question) ask(question);
  });
  $("#question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#ask-form").requestSubmit();
    }
  });
  $("#stop-button").addEventListener("click", () => streaming && streaming.abort());
  $("#new-chat").addEventListener("click", () => {
    current = null;
    $("#messages").replaceChildren();
    markCurrent();
    $("#question").focus();
  });
  $("#source-close").addEventListener("click", () => $("#source-dialog").close());
}

export function reset() {
  current = null;
  $("#messages").replaceChildren();
  $("#session-list").replaceChildren();
}

// --- sessions -----------------------------------------------------------------------------

export async function loadSessions() {
  let listed;
  try {
    listed = await get("/v1/chat/sessions");
  } catch (error) {
    notify(`Chats could not be listed: ${describe(error)}`, "error");
    return;
  }
  $("#session-list").replaceChildren(
    ...listed.sessions.map((s) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", className: "session", dataset: { sessionId: s.id }, onclick: () => open(s.id) },
          h("span", { className: "session-title" }, s.title || "Untitled chat"),
          h("span", { className: "hint" }, when(s.updated_at)),
        ),
      ),
    ),
  );
  markCurrent();
}

function markCurrent() {
  for (const button of document.querySelectorAll("#session-list .session")) {
    if (button.dataset.sessionId === current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function open(sessionId) {
  let detail;
  try {
    detail = await get(`/v1/chat/sessions/${sessionId}`);
  } catch (error) {
    notify(`The chat could not be opened: ${describe(error)}`, "error");
    return;
  }
  current = sessionId;
  markCurrent();
  const list = $("#messages");
  list.replaceChildren();
  for (const message of detail.messages) {
    if (message.role === "user") {
      list.append(questionItem(message.content));
      continue;
    }
    const view = answerItem();
    list.append(view.item);
    view.text = message.content;
    for (const citation of message.citations) view.cite(citation);
    const meta = message.meta || {};
    view.finish(
      { confidence: meta.confidence ?? 0, abstained: Boolean(meta.abstained), follow_ups: [] },
      message.status,
    );
  }
  $("#question").focus();
}

// --- asking -------------------------------------------------------------------------------

function questionItem(text) {
  return h("li", { className: "msg user" }, h("p", {}, text));
}

// An answer as it streams: text, citation chips, then confidence and follow-ups.
function answerItem() {
  const answer = h("div", { className: "answer", "aria-live": "polite", "aria-busy": "true" });
  const meta = h("div", { className: "meta" });
  const chips = h("div", { className: "citations", "aria-label": "Sources" });
  const follow = h("div", { className: "follow-ups" });
  const item = h("li", { className: "msg assistant", dataset: { state: "streaming" } }, answer, chips, meta, follow);
  const cited = new Map();
  const view = {
    item,
    text: "",
    append(token) {
      view.text += token;
      answer.textContent = view.text;
    },
    cite(citation) {
      if (cited.has(citation.n)) return;
      cited.set(citation.n, citation);
      const where = citation.page ? ` · p. ${citation.page}` : "";
      chips.append(
        h(
          "button",
          {
            type: "button",
            className: "chip",
            dataset: { n: citation.n },
            "aria-label": `Source ${citation.n}: ${citation.title}${where}`,
            onclick: () => openSource(citation),
          },
          h("span", { className: "n" }, `${citation.n}`),
          `${citation.title}${where}`,
        ),
      );
    },
    // `done`: the text with its [n] markers made buttons, then what the answer says of itself.
    finish(done, state = "done") {
      answer.replaceChildren(...withMarkers(view.text, cited));
      answer.setAttribute("aria-busy", "false");
      item.dataset.state = state === "complete" ? "done" : state;
      const confidence = Math.round((done.confidence || 0) * 100);
      const parts = [
        done.abstained
          ? h("span", { className: "badge abstained" }, "Abstained: not in the documents")
          : h(
              "span",
              { className: "confidence" },
              h("meter", { min: 0, max: 100, value: confidence, "aria-label": "Confidence" }),
              ` Confidence ${confidence} %`,
            ),
        done.dropped_sentences
          ? h("span", { className: "hint" }, ` · ${done.dropped_sentences} unverified sentence(s) left out`)
          : null,
        done.generated_by
          ? h("span", { className: "hint" }, ` · answered by ${done.generated_by.provider} (${done.generated_by.model})`)
          : null,
        state === "partial" ? h("span", { className: "hint" }, " · stopped") : null,
      ];
      meta.replaceChildren(...parts.filter(Boolean));
      follow.replaceChildren();
      if (done.follow_ups && done.follow_ups.length) {
        follow.append(
          h("h3", {}, "Follow-up questions"),
          ...done.follow_ups.map((q) =>
            h("button", { type: "button", className: "follow-up", onclick: () => ask(q) }, q),
          ),
        );
      }
    },
    fail(message) {
      answer.setAttribute("aria-busy", "false");
      item.dataset.state = "error";
      meta.replaceChildren(h("span", { className: "error", role: "alert" }, message));
    },
  };
  return view;
}

function withMarkers(text, cited) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const citation = cited.get(Number(match[1]));
    if (!citation) continue;
    parts.push(text.slice(last, match.index));
    parts.push(
      h(
        "button",
        {
          type: "button",
          className: "marker",
          "aria-label": `Source ${citation.n}: ${citation.title}`,
          onclick: () => openSource(citation),
        },
        match[0],
      ),
    );
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

async function ask(question) {
  if (streaming) return;
  const list = $("#messages");
  $("#question").value = "";
  list.append(questionItem(question));
  const view = answerItem();
  list.append(view.item);
  view.item.scrollIntoView({ block: "nearest" });
  streaming = new AbortController();
  $("#stop-button").hidden = false;
  $("#ask-button").disabled = true;
  try {
    if (!current) {
      const created = await post("/v1/chat/sessions", { title: question.slice(0, 80) });
      current = created.session_id;
    }
    const response = await send("POST", `/v1/chat/sessions/${current}/messages`, {
      json: { content: question, stream: true },
      signal: streaming.signal,
      headers: { accept: "text/event-stream" },
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new ApiError(response.status, data);
    }
    let finished = false;
    for await (const { event, data } of events(response)) {
      if (event === "token") view.append(data.text);
      else if (event === "citation") view.cite(data);
      else if (event === "tool_call") view.item.dataset.tools = (view.item.dataset.tools || "") + data.name + " ";
      else if (event === "done") {
        view.finish(data);
        finished = true;
      } else if (event === "error") {
        view.fail(`The answer stopped: ${data.message}`);
        finished = true;
      }
    }
    if (!finished) view.fail("The answer was cut off.");
  } catch (error) {
    if (error.name === "AbortError") view.finish({ confidence: 0, abstained: false }, "partial");
    else view.fail(describe(error));
  } finally {
    streaming = null;
    $("#stop-button").hidden = true;
    $("#ask-button").disabled = false;
    loadSessions();
  }
}

// --- sources ------------------------------------------------------------------------------

const CONTEXT = 600; // characters shown either side of a quote that is not on a page

// The cited version's text around the quote: the whole page for paged documents (PDFs),
// otherwise the passage (GET /v1/documents/{id}/sections?char_start=&char_end=).
async function openSource(citation) {
  const dialog = $("#source-dialog");
  const text = $("#source-text");
  const note = $("#source-note");
  $("#source-title").textContent = citation.title;
  $("#source-where").textContent = "Loading…";
  note.hidden = true;
  text.replaceChildren();
  dialog.dataset.n = citation.n;
  if (!dialog.open) dialog.showModal();
  const path = `/v1/documents/${citation.document_id}/sections`;
  const pages =
    citation.page && citation.page_end && citation.page_end !== citation.page
      ? { section: `pages ${citation.page}-${citation.page_end}` }
      : { page: citation.page };
  const around = {
    char_start: Math.max(0, citation.char_start - CONTEXT),
    char_end: citation.char_end + CONTEXT,
  };
  let found;
  try {
    found = await get(path + query({ ...(citation.page ? pages : around), max_chars: 20000 }));
    const section = found.section;
    if (citation.page && section.char_start + section.text.length < citation.char_end) {
      found = await get(path + query({ ...around, max_chars: 20000 })); // a page over 20,000 characters
    }
  } catch (error) {
    $("#source-where").textContent = "";
    note.hidden = false;
    note.textContent = `The source could not be opened: ${describe(error)}`;
    return;
  }
  const section = found.section;
  let start = citation.char_start - section.char_start;
  let end = citation.char_end - section.char_start;
  const exact = found.version === citation.version && section.text.slice(start, end) === citation.quote;
  if (!exact) {
    // A newer version is live: show the quote where it is now, if it still is.
    start = section.text.indexOf(citation.quote);
    end = start < 0 ? -1 : start + citation.quote.length;
    note.hidden = false;
    note.textContent =
      start < 0
        ? `Version ${found.version} is live now and no longer holds this quote from version ${citation.version}.`
        : `Version ${found.version} is live now; the answer quoted version ${citation.version}.`;
  }
  const pageText =
    section.page_start && section.page_end && section.page_start !== section.page_end
      ? `Pages ${section.page_start}–${section.page_end}`
      : section.page_start
        ? `Page ${section.page_start}`
        : "";
  $("#source-where").textContent = [
    pageText,
    `characters ${citation.char_start}–${citation.char_end} of version ${citation.version}`,
  ]
    .filter(Boolean)
    .join(" · ");
  if (start < 0) {
    text.replaceChildren(section.text);
    return;
  }
  const mark = h("mark", { id: "source-quote", tabindex: "-1" }, section.text.slice(start, end));
  text.replaceChildren(
    section.char_start > 0 && !citation.page ? "…" : "",
    section.text.slice(0, start),
    mark,
    section.text.slice(end),
    section.truncated ? "…" : "",
  );
  mark.scrollIntoView({ block: "center" });
  mark.focus({ preventScroll: true });
}
