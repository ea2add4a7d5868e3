// Admin (the tenant's admins): usage, the daily token budget and rate-limit windows; users;
// API keys (a new key is shown once).

import { api, get, post } from "./api.js";
import { $, describe, duration, h, notify, when } from "./dom.js";

export function setUp() {
  $("#refresh-admin").addEventListener("click", () => load());
  $("#register-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    try {
      const user = await post("/v1/auth/register", {
        email: $("#reg-email").value.trim(),
        name: $("#reg-name").value.trim(),
        password: $("#reg-password").value,
        role: $("#reg-role").value,
      });
      notify(`Registered ${user.email} as ${user.role}.`);
      form.reset();
      await users();
    } catch (error) {
      notify(`The user could not be registered: ${describe(error)}`, "error");
    }
  });
  $("#key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    try {
      const created = await post("/v1/api-keys", { name: $("#key-name").value.trim(), role: $("#key-role").value });
      const shown = $("#new-key");
      shown.hidden = false;
      shown.replaceChildren(
        `New ${created.role} key “${created.name}” — copy it now, it is not shown again: `,
        h("code", {}, created.api_key),
      );
      form.reset();
      await keys();
    } catch (error) {
      notify(`The key could not be created: ${describe(error)}`, "error");
    }
  });
}

export function reset() {
  $("#new-key").hidden = true;
  $("#new-key").replaceChildren();
}

export async function load() {
  await Promise.all([limits(), users(), keys()]);
}

function cells(...values) {
  return h("tr", {}, values.map((v) => h("td", {}, v)));
}

async function limits() {
  let status;
  try {
    status = await get("/v1/rate-limit/status");
  } catch (error) {
    notify(`Limits could not be read: ${describe(error)}`, "error");
    return;
  }
  const budget = status.token_budget;
  const used = budget.used + budget.reserved;
  $("#budget").replaceChildren(
    h("label", { for: "budget-meter" }, `LLM tokens today (${budget.day}, UTC)`),
    h("meter", { id: "budget-meter", min: 0, max: budget.budget, value: used, high: budget.budget * 0.8 }),
    h(
      "p",
      {},
      `${budget.used.toLocaleString()} used`,
      budget.reserved ? `, ${budget.reserved.toLocaleString()} reserved by answers in flight` : "",
      ` of ${budget.budget.toLocaleString()} · ${budget.remaining.toLocaleString()} left`,
    ),
  );
  $("#limits-table tbody").replaceChildren(
    ...status.windows.map((w) =>
      cells(w.route_class, w.scope, String(w.used), String(w.limit), duration(w.window_seconds), duration(w.reset_seconds)),
    ),
  );
  try {
    const summary = await get("/v1/progress/summary");
    $("#usage-summary").textContent =
      `${summary.questions_asked} question(s) asked by ${summary.learners_asking} learner(s); ` +
      `${summary.documents.length} document(s) read.`;
  } catch {
    $("#usage-summary").textContent = "";
  }
}

async function users() {
  let listed;
  try {
    listed = await get("/v1/users");
  } catch (error) {
    notify(`Users could not be listed: ${describe(error)}`, "error");
    return;
  }
  $("#users-table tbody").replaceChildren(
    ...listed.users.map((u) =>
      cells(u.email, u.name, u.role, u.disabled_at ? `disabled ${when(u.disabled_at)}` : "active", when(u.created_at)),
    ),
  );
}

async function keys() {
  let listed;
  try {
    listed = await get("/v1/api-keys");
  } catch (error) {
    notify(`API keys could not be listed: ${describe(error)}`, "error");
    return;
  }
  $("#keys-table tbody").replaceChildren(
    ...listed.api_keys.map((k) => {
      const revoked = Boolean(k.revoked_at);
      const action = revoked
        ? h("span", { className: "hint" }, `revoked ${when(k.revoked_at)}`)
        : h(
            "button",
            { type: "button", className: "quiet danger", onclick: () => revoke(k) },
            h("span", { className: "sr-only" }, `${k.name || k.key_prefix}: `),
            "Revoke",
          );
      const row = cells(k.name || "", `${k.key_prefix}…`, k.role, when(k.created_at));
      row.append(h("td", {}, action));
      return row;
    }),
  );
}

async function revoke(key) {
  try {
    await api("DELETE", `/v1/api-keys/${key.id}`);
    notify(`Revoked ${key.name || key.key_prefix}.`);
  } catch (error) {
    notify(`The key could not be revoked: ${describe(error)}`, "error");
  }
  await keys();
}
