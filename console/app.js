// The edgerag web console: one page over the public API, no framework, no build step.
// Views: sign in · Ask · Documents · Admin (admins). What a role may not do is not shown
// (students see no upload), and the API refuses it anyway.

import * as admin from "./admin.js";
import { get, session, signInWithKey, signInWithPassword, signOut } from "./api.js";
import * as ask from "./ask.js";
import { $, $$, describe, notify } from "./dom.js";
import * as documents from "./documents.js";

const VIEWS = ["ask", "documents", "admin"];

function allowed(element, role) {
  const roles = element.dataset.roles;
  return !roles || roles.split(" ").includes(role);
}

function applyRole(role) {
  document.body.dataset.role = role || "";
  for (const element of $$("[data-roles]")) element.hidden = !allowed(element, role);
}

function show(view, { focus = true } = {}) {
  const signedIn = Boolean(session.me);
  const role = signedIn ? session.me.role : null;
  if (!signedIn) view = "signin";
  else if (!VIEWS.includes(view) || (view === "admin" && role !== "admin")) {
    view = role === "student" ? "ask" : "documents";
  }
  if (view !== document.body.dataset.view) notify(""); // a message belongs to its view
  document.body.dataset.view = view;
  for (const section of $$(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of $$("#nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("#nav").hidden = !signedIn;
  $("#who").hidden = !signedIn;
  applyRole(role);
  document.title = `${view === "signin" ? "Sign in" : $(`#${view}-title`).textContent} · edgerag console`;
  if (view === "documents") documents.load();
  if (view === "ask") ask.loadSessions();
  if (view === "admin") admin.load();
  if (focus) {
    const heading = $(`#view-${view} h1`);
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function signedIn(me) {
  const label = me.kind === "user" ? me.name || me.email : `API key ${me.id}`;
  $("#who-name").textContent = label;
  $("#who-role").textContent = me.role;
  $("#signin-error").hidden = true;
  notify("");
  const view = location.hash.slice(1);
  if (VIEWS.includes(view)) show(view);
  else location.hash = me.role === "student" ? "#ask" : "#documents";
}

function signedOut(message) {
  ask.reset();
  documents.reset();
  admin.reset();
  show("signin");
  if (message) notify(message, "error");
}

async function attempt(button, work) {
  button.disabled = true;
  const error = $("#signin-error");
  error.hidden = true;
  try {
    signedIn(await work());
  } catch (failure) {
    error.textContent =
      failure.code === "invalid_credentials" || failure.status === 401
        ? "Those credentials were not accepted."
        : describe(failure);
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function setUp() {
  session.onEnded = () => signedOut("Your session ended: sign in again.");
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter || $("#login-form button");
    attempt(button, () =>
      signInWithPassword($("#login-email").value, $("#login-password").value, $("#login-tenant").value),
    ).then(() => ($("#login-password").value = ""));
  });
  $("#key-login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter || $("#key-login-form button");
    attempt(button, () => signInWithKey($("#login-key").value)).then(() => ($("#login-key").value = ""));
  });
  $("#sign-out").addEventListener("click", async () => {
    await signOut();
    history.replaceState(null, "", location.pathname);
    signedOut();
  });
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  ask.setUp();
  documents.setUp();
  admin.setUp();
  // Files dropped anywhere but the drop zone must not make the browser navigate to them.
  for (const name of ["dragover", "drop"]) {
    window.addEventListener(name, (event) => {
      if (!event.target.closest || !event.target.closest("#dropzone")) event.preventDefault();
    });
  }
}

setUp();
if (session.load() && session.me) {
  // A reload in the same tab: the kept token still has to work (and the role may have changed).
  try {
    session.me = await get("/v1/auth/me");
    session.save();
    signedIn(session.me);
  } catch (error) {
    session.clear();
    signedOut(error.status === 401 ? "Your session ended: sign in again." : describe(error));
  }
} else {
  session.clear();
  show("signin", { focus: false });
}
document.body.dataset.ready = "true";
