// Documents: drag-and-drop upload of several files with progress and per-file status, and the
// library (versions, status, delete and restore). Upload and delete are for teachers and admins;
// the ingest Worker decides which documents each caller may see and change.

import { ApiError, api, get, post, query, session, upload } from "./api.js";
import { $, bytes, describe, h, notify, when } from "./dom.js";

const WRITERS = new Set(["admin", "teacher"]);
const VISIBILITY = { tenant: "everyone", students: "students", private: "only me" };
const POLL_MS = [500, 1000, 1000, 2000, 3000]; // then every 3 s

let cursor = null;
const deleted = new Map(); // document id -> title, for Restore (the list no longer shows them)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const canWrite = () => WRITERS.has(session.me && session.me.role);

export function setUp() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  input.addEventListener("change", () => {
    uploadAll(Array.from(input.files));
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(Array.from(event.dataTransfer.files));
  });
  $("#refresh-documents").addEventListener("click", () => load());
  $("#more-documents").addEventListener("click", () => load(cursor));
}

export function reset() {
  cursor = null;
  deleted.clear();
  $("#upload-list").replaceChildren();
  $("#document-table tbody").replaceChildren();
  renderDeleted();
}

// --- upload -------------------------------------------------------------------------------

function uploadAll(files) {
  if (!canWrite()) return;
  const visibility = $("#upload-visibility").value;
  for (const file of files) uploadOne(file, visibility);
}

async function uploadOne(file, visibility) {
  const bar = h("progress", { max: 100, value: 0, "aria-label": `${file.name} upload` });
  const status = h("span", { className: "status" }, "Uploading 0 %");
  const item = h(
    "li",
    { className: "upload", dataset: { name: file.name, status: "uploading" } },
    h("span", { className: "name" }, file.name),
    h("span", { className: "size" }, bytes(file.size)),
    bar,
    status,
  );
  $("#upload-list").prepend(item);
  const show = (state, text) => {
    item.dataset.status = state;
    status.textContent = text;
  };
  let accepted;
  try {
    accepted = await upload(file, { visibility }, (fraction) => {
      bar.value = Math.round(fraction * 100);
      show("uploading", `Uploading ${bar.value} %`);
    });
  } catch (error) {
    show("failed", `Failed: ${describe(error)}`);
    return;
  }
  bar.value = 0;
  item.dataset.documentId = accepted.document_id;
  show(accepted.status, accepted.unchanged ? "Unchanged" : "Queued");
  await follow(accepted.document_id, item, bar, show);
  load();
}

// Poll GET /v1/documents/{id}/status until the version is ready or failed.
async function follow(documentId, item, bar, show) {
  for (let round = 0; ; round += 1) {
    if (round) await sleep(POLL_MS[Math.min(round - 1, POLL_MS.length - 1)]);
    let status;
    try {
      status = await get(`/v1/documents/${documentId}/status`);
    } catch (error) {
      const passing = !(error instanceof ApiError) || error.status >= 500 || error.status === 429;
      if (passing) continue; // the network, the server or a limit: ask again later
      show("failed", `Failed: ${describe(error)}`);
      return;
    }
    const { done, total } = status.progress;
    if (status.status === "ready") {
      bar.value = 100;
      show("ready", `Ready · version ${status.version}`);
      return;
    }
    if (status.status === "failed" || status.status === "superseded") {
      show(status.status, `${status.status === "failed" ? "Failed" : "Superseded"}: ${status.error || ""}`);
      return;
    }
    bar.value = total ? Math.round((done / total) * 100) : 0;
    show(status.status, status.status === "processing" ? `Processing ${done}/${total}` : "Queued");
  }
}

// --- the library --------------------------------------------------------------------------

export async function load(after = null) {
  let page;
  try {
    page = await get("/v1/documents" + query({ limit: 50, cursor: after }));
  } catch (error) {
    notify(`Documents could not be listed: ${describe(error)}`, "error");
    return;
  }
  const body = $("#document-table tbody");
  if (!after) body.replaceChildren();
  for (const doc of page.documents) body.append(...rows(doc));
  cursor = page.next_cursor;
  $("#more-documents").hidden = !cursor;
  $("#documents-empty").hidden = body.children.length > 0;
}

function badge(status) {
  return h("span", { className: `badge status-${status}` }, status);
}

function rows(doc) {
  const detailsId = `versions-${doc.id}`;
  const toggle = h(
    "button",
    { type: "button", className: "quiet", "aria-expanded": "false", "aria-controls": detailsId },
    "Versions",
  );
  const actions = h("td", { className: "actions", "data-label": "" }, toggle);
  if (canWrite()) {
    actions.append(
      h("button", { type: "button", className: "quiet danger", onclick: () => remove(doc) }, "Delete"),
    );
  }
  const row = h(
    "tr",
    { dataset: { documentId: doc.id, status: doc.status } },
    h("th", { scope: "row", "data-label": "Title" }, doc.title),
    h("td", { "data-label": "Status" }, badge(doc.status)),
    h("td", { "data-label": "Version" }, versionText(doc)),
    h("td", { "data-label": "Visible to" }, VISIBILITY[doc.visibility] || doc.visibility),
    h("td", { "data-label": "Updated" }, when(doc.updated_at)),
    actions,
  );
  const cell = h("td", { colspan: 6 });
  const details = h("tr", { id: detailsId, className: "versions", hidden: true }, cell);
  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    details.hidden = !open;
    if (open) await versions(doc.id, cell);
  });
  return [row, details];
}

function versionText(doc) {
  const live = doc.live_version ? `v${doc.live_version}` : "none live";
  return doc.latest_version !== doc.live_version ? `${live} (latest v${doc.latest_version})` : live;
}

async function versions(documentId, cell) {
  cell.replaceChildren(h("p", { className: "hint" }, "Loading…"));
  let detail;
  try {
    detail = await get(`/v1/documents/${documentId}`);
  } catch (error) {
    cell.replaceChildren(h("p", { className: "error" }, describe(error)));
    return;
  }
  const head = ["Version", "Status", "Kind", "File", "Size", "Pages", "Chunks", "Created", "Error"];
  cell.replaceChildren(
    h(
      "div",
      { className: "scroll" },
      h(
        "table",
        { className: "versions-table" },
        h("caption", { className: "sr-only" }, `Versions of ${detail.title}`),
        h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          detail.versions.map((v) =>
            h(
              "tr",
              {},
              h("td", {}, `v${v.version}${v.version === detail.live_version ? " (live)" : ""}`),
              h("td", {}, badge(v.status)),
              h("td", {}, v.kind),
              h("td", {}, v.filename || v.source_url || ""),
              h("td", {}, bytes(v.size_bytes)),
              h("td", {}, v.page_count ?? ""),
              h("td", {}, v.chunk_count),
              h("td", {}, when(v.created_at)),
              h("td", {}, v.error || ""),
            ),
          ),
        ),
      ),
    ),
  );
}

async function remove(doc) {
  try {
    await api("DELETE", `/v1/documents/${doc.id}`);
  } catch (error) {
    notify(`${doc.title} could not be deleted: ${describe(error)}`, "error");
    return;
  }
  deleted.set(doc.id, doc.title);
  notify(`Deleted ${doc.title}. It is unsearchable now; Restore undoes it.`);
  renderDeleted();
  await load();
}

async function restore(documentId) {
  const title = deleted.get(documentId);
  try {
    await post(`/v1/documents/${documentId}/restore`, {});
  } catch (error) {
    notify(`${title} could not be restored: ${describe(error)}`, "error");
    return;
  }
  deleted.delete(documentId);
  notify(`Restored ${title}.`);
  renderDeleted();
  await load();
}

function renderDeleted() {
  $("#deleted-panel").hidden = deleted.size === 0;
  $("#deleted-list").replaceChildren(
    ...Array.from(deleted, ([id, title]) =>
      h(
        "li",
        { dataset: { documentId: id } },
        h("span", {}, title),
        h("button", { type: "button", className: "quiet", onclick: () => restore(id) }, "Restore"),
      ),
    ),
  );
}
