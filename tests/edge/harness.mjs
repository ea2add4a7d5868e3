#!/usr/bin/env node
// Edge-tier harness: runs real Python Worker entrypoints (workers/<name>/entry.py) with the real
// `workers` SDK (PyPI `workers-runtime-sdk`) inside real Pyodide (npm `pyodide`, Python 3.14 =
// compatibility flag python_workers_20260610) under Node 22, against real Miniflare D1/KV/R2,
// JS stand-ins for Vectorize and Workers AI, and in-process service bindings between Workers.
// Fully offline: Pyodide loads from node_modules, packages come from pre-fetched wheels.
//
//   node harness.mjs --plan PLAN.json [--workers-dir DIR] [--migrations DIR] [--wheels DIR]
//                    [--persist DIR] [--out FILE]
//
// The plan (JSON; relative paths resolve against the plan file's directory):
// {
//   "workersDir": "sample_worker",            // import root, copied to /session/metadata
//   "migrations": {"DB": "test_migrations"},   // or a string: applied to binding "DB"
//   "resources": {                            // shared by all workers (like real account resources)
//     "d1": {"DB": "edgerag"}, "kv": ["KV"], "r2": ["R2"],
//     "vectorize": {"VECTORIZE": {"dimensions": 384, "metric": "cosine"}}, "ai": ["AI"]
//   },
//   "workers": {                              // one Pyodide instance (isolate) per worker
//     "sample": {"module": "sample.entry", "bindings": ["DB", "KV"], "services": {"PEER": "peer"},
//                "vars": {"NAME": "x"}, "compatibilityFlags": ["python_workers_20260610"]}
//   },
//   "steps": [
//     {"fetch": "sample", "method": "POST", "url": "https://sample/x", "headers": {}, "body": "…"},
//     {"script": "path/to/script.py", "worker": "sample"},   // async def main(env, ctx) -> JSON
//     {"suite": "path/to/suite.py", "worker": "sample", "select": "TestX"}, // Test* classes
//     {"scheduled": "sample", "cron": "*/2 * * * *"},  // a Cron Trigger event: Default.scheduled
//     {"control": "sample", "evictBackground": true}   // until reset: drop that worker's
//   ]                                                  // ctx.waitUntil work (an evicted isolate)
// }
// Output (stdout): `timing <what>: <ms> ms`, `heap <worker>: <MB> MB` lines and one final
// `RESULT <json>` line. Logs (Python stdout/stderr, Miniflare) go to stderr.
// Exit code: 0 ran (steps report their own failures), 75 Miniflare failed to start, 1 otherwise.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { loadPyodide } from "pyodide";
import { Ai, VectorizeIndexImpl } from "./standins.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXIT_MINIFLARE_START = 75;
const SESSION_ROOT = "/session/metadata"; // where workerd puts the bundle's modules
const DEFAULT_FLAGS = ["python_workers", "python_workers_20260610"];
const t0 = Date.now();

const out = (line) => process.stdout.write(line + "\n");
const log = (...a) => process.stderr.write(a.map(String).join(" ") + "\n");
const timing = (what, ms) => out(`timing ${what}: ${Math.round(ms)} ms`);

function shortError(e) {
  // Pyodide errors can carry a whole minified module in their stack; keep it readable.
  const msg = e && e.message ? e.message : String(e);
  return msg.length > 6000 ? msg.slice(0, 6000) + "…" : msg;
}

// ------------------------------------------------------------------------------------------
// CLI + plan
// ------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (["load-only"].includes(key)) args[key] = true;
    else args[key] = argv[++i];
  }
  return args;
}

function loadPlan(args) {
  if (!args.plan) throw new Error("--plan PLAN.json is required");
  const planPath = path.resolve(args.plan);
  const base = path.dirname(planPath);
  const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
  const rel = (p) => (p ? path.resolve(base, p) : p);
  plan.workersDir = args["workers-dir"] ? path.resolve(args["workers-dir"]) : rel(plan.workersDir);
  let migrations = plan.migrations ?? {};
  if (typeof migrations === "string") migrations = { DB: migrations };
  if (args.migrations) migrations = { ...migrations, DB: args.migrations };
  plan.migrations = Object.fromEntries(
    Object.entries(migrations).map(([k, v]) => [k, path.resolve(args.migrations && k === "DB" ? "." : base, v)]),
  );
  plan.wheels = path.resolve(args.wheels ?? rel(plan.wheels) ?? path.join(HERE, ".wheels"));
  plan.resources ??= {};
  plan.workers ??= {};
  plan.steps ??= [];
  for (const spec of Object.values(plan.workers)) {
    spec.extraWheels = (spec.extraWheels ?? []).map(rel);
    spec.mounts = Object.fromEntries(Object.entries(spec.mounts ?? {}).map(([k, v]) => [k, rel(v)]));
    if (spec.workersDir) spec.workersDir = rel(spec.workersDir);
  }
  for (const step of plan.steps) {
    if (step.script) step.script = rel(step.script);
    if (step.suite) step.suite = rel(step.suite);
  }
  if (args["load-only"]) plan.steps = [];
  return plan;
}

// ------------------------------------------------------------------------------------------
// D1 migrations (wrangler-style: split into statements, one batch per file, tracked)
// ------------------------------------------------------------------------------------------

export function splitSql(sql) {
  const stmts = [];
  let cur = "";
  let i = 0;
  let depth = 0; // BEGIN … END nesting inside CREATE TRIGGER
  const n = sql.length;
  const word = () => {
    const m = /^[A-Za-z_]+/.exec(sql.slice(i));
    return m ? m[0] : "";
  };
  while (i < n) {
    const c = sql[i];
    const two = sql.slice(i, i + 2);
    if (two === "--") {
      const j = sql.indexOf("\n", i);
      i = j === -1 ? n : j + 1;
      cur += "\n";
      continue;
    }
    if (two === "/*") {
      const j = sql.indexOf("*/", i + 2);
      i = j === -1 ? n : j + 2;
      cur += " ";
      continue;
    }
    if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let j = i + 1;
      while (j < n) {
        if (sql[j] === close) {
          if (close !== "]" && sql[j + 1] === close) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      cur += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c) && (i === 0 || !/[A-Za-z0-9_]/.test(sql[i - 1]))) {
      const w = word();
      const up = w.toUpperCase();
      if (up === "BEGIN" && /\bCREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(cur)) depth++;
      else if (up === "CASE" && depth > 0) depth++;
      else if (up === "END" && depth > 0) depth--;
      cur += w;
      i += w.length;
      continue;
    }
    if (c === ";" && depth === 0) {
      if (cur.trim()) stmts.push(cur.trim());
      cur = "";
      i++;
      continue;
    }
    cur += c;
    i++;
  }
  if (cur.trim()) stmts.push(cur.trim());
  return stmts;
}

async function applyMigrations(db, dir, binding) {
  if (!fs.existsSync(dir)) throw new Error(`migrations directory ${dir} does not exist`);
  await db
    .prepare(
      "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, " +
        "name TEXT UNIQUE, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .run();
  const done = new Set(
    ((await db.prepare("SELECT name FROM d1_migrations").all()).results ?? []).map((r) => r.name),
  );
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  const applied = [];
  for (const f of files) {
    if (done.has(f)) continue;
    const stmts = splitSql(fs.readFileSync(path.join(dir, f), "utf8"));
    const batch = stmts.map((s) => db.prepare(s));
    batch.push(db.prepare("INSERT INTO d1_migrations(name) VALUES (?)").bind(f));
    try {
      await db.batch(batch);
    } catch (e) {
      throw new Error(`migration ${f} on ${binding} failed: ${e.message}`);
    }
    applied.push(f);
  }
  return applied;
}

// ------------------------------------------------------------------------------------------
// Named proxies around Miniflare bindings
// ------------------------------------------------------------------------------------------
// The SDK's _EnvWrapper recognises bindings by `constructor.name`; Miniflare's proxies answer
// "constructor". Each wrapper reports the runtime's class name, resolves the API's async methods
// as Promises (Miniflare answers some calls synchronously), names nested objects, unwraps our
// proxies when they are passed back (db.batch([stmt…])) and re-wraps foreign Responses.

const SPECS = {
  D1Database: {
    async: ["batch", "exec", "dump"],
    nested: { prepare: "D1PreparedStatement", withSession: "D1DatabaseSession" },
  },
  D1DatabaseSession: { async: ["batch"], nested: { prepare: "D1PreparedStatement" } },
  D1PreparedStatement: { async: ["first", "all", "run", "raw"], nested: { bind: "D1PreparedStatement" } },
  KvNamespace: { async: ["get", "getWithMetadata", "put", "delete", "list"] },
  R2Bucket: {
    async: ["head", "get", "put", "delete", "list", "createMultipartUpload"],
    nested: { head: "R2Object", get: "R2ObjectBody", put: "R2Object", list: "R2Objects" },
  },
  R2ObjectBody: { async: ["arrayBuffer", "text", "json", "blob", "bytes"], nested: {} },
  R2Object: { async: [], nested: {} },
};

const TARGET = new WeakMap(); // our proxy -> Miniflare object
const ctorCache = new Map();
function namedCtor(name) {
  if (!ctorCache.has(name)) {
    const C = { [name]: function () {} }[name];
    ctorCache.set(name, C);
  }
  return ctorCache.get(name);
}

function unwrapArg(a) {
  if (a && typeof a === "object") {
    if (TARGET.has(a)) return TARGET.get(a);
    if (Array.isArray(a)) return a.map(unwrapArg);
  }
  return a;
}

async function toGlobalResponse(r) {
  if (!(r && typeof r === "object" && r.constructor?.name === "Response")) return r;
  if (r instanceof Response) return r;
  return new Response(r.body, { status: r.status, statusText: r.statusText, headers: new Headers([...r.headers]) });
}

function nest(value, name) {
  if (value === null || value === undefined || !name) return value;
  if (name === "R2Objects") {
    if (Array.isArray(value.objects)) value.objects = value.objects.map((o) => nest(o, "R2Object"));
    return value;
  }
  if (typeof value === "object") return named(value, name);
  return value;
}

export function named(target, name) {
  const spec = SPECS[name] ?? { async: [], nested: {} };
  const C = namedCtor(name);
  const proxy = new Proxy(target, {
    get(t, prop) {
      if (prop === "constructor") return C;
      if (prop === Symbol.toStringTag) return name;
      if (prop === "then") return undefined;
      const v = Reflect.get(t, prop);
      if (typeof v !== "function") return v;
      return (...args) => {
        const r = v.apply(t, args.map(unwrapArg));
        const isAsync = spec.async.includes(prop) || (r && typeof r.then === "function");
        if (isAsync) {
          return Promise.resolve(r)
            .then(toGlobalResponse)
            .then((x) => nest(x, spec.nested?.[prop]));
        }
        return nest(r, spec.nested?.[prop]);
      };
    },
  });
  TARGET.set(proxy, target);
  return proxy;
}

// ------------------------------------------------------------------------------------------
// Execution context + the runtime modules the SDK imports
// ------------------------------------------------------------------------------------------

class ExecutionContext {
  #pending = [];
  props = {};
  get [Symbol.toStringTag]() {
    return "ExecutionContext";
  }
  waitUntil(p) {
    this.#pending.push(Promise.resolve(p).catch((e) => log(`[waitUntil] ${shortError(e)}`)));
  }
  passThroughOnException() {}
  async drain() {
    while (this.#pending.length) await this.#pending.shift();
  }
}

const waitUntilPatched = new WeakSet();
function patchWaitUntil(ctx, worker) {
  // Same contract as workerd: keep a Python future alive until it settles.
  if (Object.prototype.toString.call(ctx) !== "[object ExecutionContext]") return;
  if (waitUntilPatched.has(ctx)) return;
  const orig = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (p) => {
    if (worker?.evictBackground && p && typeof p.cancel === "function") {
      // The isolate went away after answering: its background work never runs. The future
      // was only scheduled (asyncio.ensure_future), so cancelling it now runs none of it.
      p.cancel();
      log(`[${worker.name}] evicted: dropped a ctx.waitUntil task`);
      return;
    }
    return orig(
      (async () => {
        if (p && typeof p.copy === "function") p = p.copy();
        await p;
        if (p && typeof p.destroy === "function") p.destroy();
      })(),
    );
  };
  waitUntilPatched.add(ctx);
}

function compatFlagsModule(flags) {
  const on = new Set(flags);
  // Any flag name answers a bool (like the runtime's module); dunders stay undefined.
  return new Proxy(
    {},
    {
      get(_t, prop) {
        if (typeof prop !== "string" || prop.startsWith("_") || prop === "then") return undefined;
        return on.has(prop);
      },
      has(_t, prop) {
        return typeof prop === "string" && !prop.startsWith("_");
      },
    },
  );
}

function entrypointHelper(worker) {
  const cloudflareWorkersModule = {
    get env() {
      return worker.env;
    },
    waitUntil(p) {
      worker.backgroundCtx.waitUntil(p);
    },
    WorkerEntrypoint: class WorkerEntrypoint {},
    DurableObject: class DurableObject {},
    WorkflowEntrypoint: class WorkflowEntrypoint {},
  };
  const cloudflareSocketsModule = {
    connect() {
      throw new Error("cloudflare:sockets connect() is not available in the edge harness");
    },
  };
  return {
    cloudflareWorkersModule,
    cloudflareSocketsModule,
    doAnImport: async (name) => {
      if (name === "cloudflare:workers") return cloudflareWorkersModule;
      if (name === "cloudflare:sockets") return cloudflareSocketsModule;
      throw new Error(`edge harness: cannot import JS module ${name}`);
    },
    patchWaitUntil: (ctx) => patchWaitUntil(ctx, worker),
    *patch_env_helper(patch) {
      const env = worker.env;
      const entries = patch?.toJs ? patch.toJs({ dict_converter: Object.fromEntries }) : patch;
      const saved = {};
      for (const k of Object.keys(entries ?? {})) saved[k] = env[k];
      Object.assign(env, entries);
      try {
        yield;
      } finally {
        Object.assign(env, saved);
      }
    },
  };
}

// ------------------------------------------------------------------------------------------
// Workers (one Pyodide instance each)
// ------------------------------------------------------------------------------------------

function copyTree(py, srcDir, destDir, opts = {}) {
  let count = 0;
  py.FS.mkdirTree(destDir);
  for (const entry of fs.readdirSync(srcDir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "__pycache__" || entry.name === "node_modules") continue;
    const src = path.join(srcDir, entry.name);
    const dest = `${destDir}/${entry.name}`;
    if (entry.isDirectory()) {
      const sub = { ...opts, prefix: opts.prefix ? `${opts.prefix}/${entry.name}` : undefined };
      count += copyTree(py, src, dest, sub);
    } else if (entry.isFile()) {
      if (opts.pyOnly && !entry.name.endsWith(".py")) continue;
      if (opts.skip && path.resolve(src) === path.resolve(opts.skip)) continue;
      py.FS.writeFile(dest, fs.readFileSync(src));
      if (opts.modules && opts.prefix !== undefined) {
        const mod = `${opts.prefix}/${entry.name}`.replace(/\.py$/, "").replace(/\/__init__$/, "");
        opts.modules.push(mod.replaceAll("/", "."));
      }
      count++;
    }
  }
  return count;
}

async function loadWorker(name, spec, plan, workers) {
  const w = { name, spec, env: null, backgroundCtx: new ExecutionContext() };
  const tl = Date.now();
  const py = await loadPyodide({
    stdout: (s) => log(`[${name}] ${s}`),
    stderr: (s) => log(`[${name}!] ${s}`),
    env: { HOME: "/session", PYTHONHASHSEED: "0" },
  });
  w.py = py;
  timing(`pyodide load ${name}`, Date.now() - tl);

  const ti = Date.now();
  const sitePackages = py.runPython(
    "import sys; [p for p in sys.path if p.endswith('site-packages')][0]",
  );
  const wheels = fs.existsSync(plan.wheels) ? fs.readdirSync(plan.wheels).filter((f) => f.endsWith(".whl")) : [];
  if (!wheels.some((f) => f.startsWith("workers_runtime_sdk"))) {
    throw new Error(`no workers_runtime_sdk wheel in ${plan.wheels}: run fetch_wheels.sh first`);
  }
  const wheelPaths = wheels.sort().map((f) => path.join(plan.wheels, f));
  for (const dir of spec.extraWheels ?? []) {
    if (!fs.existsSync(dir)) throw new Error(`worker ${name}: wheel directory ${dir} missing (fetch_wheels.sh)`);
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith(".whl")).sort()) wheelPaths.push(path.join(dir, f));
  }
  for (const wp of wheelPaths) {
    const b = fs.readFileSync(wp);
    // Pyodide wants a plain Uint8Array (a Node Buffer is an "unknown typed array").
    py.unpackArchive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), "wheel", {
      extractDir: sitePackages,
    });
  }
  py.FS.writeFile(`${sitePackages}/_edge_harness.py`, fs.readFileSync(path.join(HERE, "pyodide_bootstrap.py")));
  timing(`wheels install ${name}`, Date.now() - ti);

  py.registerJsModule("_pyodide_entrypoint_helper", entrypointHelper(w));
  py.registerJsModule(
    "_cloudflare_compat_flags",
    compatFlagsModule(spec.compatibilityFlags ?? plan.compatibilityFlags ?? DEFAULT_FLAGS),
  );

  py.FS.mkdirTree(SESSION_ROOT);
  const root = spec.workersDir ?? plan.workersDir;
  let files = 0;
  let moduleName = spec.module ?? "entry";
  const bundleModules = [];
  if (spec.bundle) {
    // Exactly what `wrangler deploy` uploads for a Python Worker: the main module under its
    // basename at the root (so it imports as `entry`), plus the listed packages' .py files
    // at their paths under the import root (base_dir). Nothing else.
    const mainRel = spec.bundle.main;
    if (mainRel) {
      py.FS.writeFile(`${SESSION_ROOT}/${path.basename(mainRel)}`, fs.readFileSync(path.join(root, mainRel)));
      files++;
      moduleName = spec.module ?? path.basename(mainRel, ".py");
    }
    for (const pkg of spec.bundle.include ?? []) {
      files += copyTree(py, path.join(root, pkg), `${SESSION_ROOT}/${pkg}`, {
        pyOnly: true,
        skip: mainRel ? path.join(root, mainRel) : null,
        modules: bundleModules,
        prefix: pkg,
      });
    }
  } else if (root) {
    files = copyTree(py, root, SESSION_ROOT);
  }
  for (const [dest, src] of Object.entries(spec.mounts ?? {})) {
    // Test-only code (contract suites, stand-in workers) mounted next to the bundle.
    const parts = dest.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = `${SESSION_ROOT}/${parts.slice(0, i).join("/")}`;
      py.FS.mkdirTree(dir);
      if (!py.FS.analyzePath(`${dir}/__init__.py`).exists) py.FS.writeFile(`${dir}/__init__.py`, "");
    }
    if (fs.statSync(src).isDirectory()) {
      py.FS.mkdirTree(`${SESSION_ROOT}/${dest}`);
      files += copyTree(py, src, `${SESSION_ROOT}/${dest}`, { pyOnly: true });
    } else {
      py.FS.writeFile(`${SESSION_ROOT}/${dest}`, fs.readFileSync(src));
      files++;
    }
  }
  py.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(SESSION_ROOT)})`);

  w.env = buildEnv(w, plan, workers);
  const tm = Date.now();
  w.bootstrap = py.pyimport("_edge_harness");
  if (moduleName) {
    try {
      w.mainModule = w.bootstrap.import_main(moduleName);
    } catch (e) {
      throw new Error(`importing ${moduleName} in worker ${name} failed: ${shortError(e)}`);
    }
    w.classes = JSON.parse(w.bootstrap.entrypoint_classes(w.mainModule));
  } else {
    w.classes = { workerEntrypoints: [], durableObjects: [], workflowEntrypoints: [] };
  }
  timing(`import ${name} (${moduleName || "no main module"}, ${files} files)`, Date.now() - tm);
  if (bundleModules.length) {
    // Heap "after all imports": also the modules the entry imports lazily (e.g. kernel.bindings.cloudflare).
    const ta = Date.now();
    try {
      w.bootstrap.import_all(JSON.stringify(bundleModules));
    } catch (e) {
      throw new Error(`importing the bundle of worker ${name} failed: ${shortError(e)}`);
    }
    timing(`import all ${name} (${bundleModules.length} modules)`, Date.now() - ta);
  }
  w.heapMB = py._module.HEAP8.length / (1024 * 1024);
  w.modules = JSON.parse(w.bootstrap.loaded_modules()).length;
  out(`heap ${name}: ${w.heapMB.toFixed(1)} MB`);
  if (w.heapMB > 128) log(`WARNING: ${name} heap ${w.heapMB} MB exceeds the 128 MB isolate limit`);
  return w;
}

function buildEnv(w, plan, workers) {
  const spec = w.spec;
  const env = {};
  const all = plan.bindingObjects;
  const wanted = spec.bindings === undefined ? Object.keys(all) : spec.bindings;
  const expanded = wanted.flatMap((b) =>
    b.endsWith("*") ? Object.keys(all).filter((k) => k.startsWith(b.slice(0, -1))) : [b],
  );
  for (const b of expanded) {
    // "NAME" or "NAME=RESOURCE" (bind a shared resource under another name); "PREFIX*" = all
    const [as, from] = b.includes("=") ? b.split("=") : [b, b];
    if (!(from in all)) throw new Error(`worker ${w.name}: unknown binding resource ${from}`);
    env[as] = all[from];
  }
  for (const [binding, target] of Object.entries(spec.services ?? {})) {
    env[binding] = serviceFetcher(w.name, target, workers);
  }
  Object.assign(env, spec.vars ?? {}, spec.secrets ?? {});
  return env;
}

// A service binding: `Fetcher`-named; fetch() goes to the other worker's entrypoint, serialized
// as a fresh Request/Response the way it crosses the network. RPC methods of the target's
// Default class are exposed too (values are structured-cloned).
function serviceFetcher(from, target, workers) {
  const C = namedCtor("Fetcher");
  const fetcher = {
    async fetch(input, init) {
      const w = workers.get(target);
      if (!w) throw new Error(`service ${target} (bound in ${from}) is not loaded`);
      const req = new Request(input, init);
      const body = ["GET", "HEAD"].includes(req.method) ? undefined : await req.arrayBuffer();
      const fresh = new Request(req.url, {
        method: req.method,
        headers: new Headers(req.headers),
        body,
        redirect: req.redirect,
      });
      const resp = await dispatchFetch(w, fresh);
      return new Response(resp.body, {
        status: resp.status,
        statusText: resp.statusText,
        headers: new Headers(resp.headers),
      });
    },
    connect() {
      throw new Error("connect() over service bindings is not emulated");
    },
  };
  return new Proxy(fetcher, {
    get(t, prop) {
      if (prop === "constructor") return C;
      if (prop === Symbol.toStringTag) return "Fetcher";
      if (prop in t) return t[prop];
      if (typeof prop !== "string") return undefined;
      const w = workers.get(target);
      const def = w?.classes.workerEntrypoints.find((c) => c.className === "Default");
      if (!def || !def.methodNames.includes(prop) || prop === "fetch") return undefined;
      return async (...args) => {
        const cloned = structuredClone(args);
        return structuredClone(await callMethod(w, prop, cloned, false));
      };
    },
  });
}

async function callMethod(w, prop, args, relaxed) {
  const ctx = new ExecutionContext();
  let inst;
  try {
    inst = w.bootstrap.construct(w.mainModule, "Default", ctx, w.env);
    const res = await w.bootstrap.call_method(relaxed, inst, prop, ...args);
    return res?.toJs ? res.toJs({ dict_converter: Object.fromEntries }) : res;
  } finally {
    inst?.destroy?.();
    // Like workerd: the response goes out now; ctx.waitUntil work keeps running afterwards
    // (drained before the harness exits).
    w.backgroundCtx.waitUntil(ctx.drain());
  }
}

const lastErrors = new Map();
async function dispatchFetch(w, request) {
  // workerd: a fresh `Default(ctx, env)` per request, then fetch(request) with relaxed call.
  try {
    const res = await callMethod(w, "fetch", [request], true);
    if (!(res instanceof Response)) {
      throw new Error(`fetch() of ${w.name} returned ${res?.constructor?.name ?? typeof res}, not a Response`);
    }
    return res;
  } catch (e) {
    const msg = shortError(e);
    log(`[${w.name}] uncaught exception in fetch: ${msg}`);
    lastErrors.set(w.name, msg);
    return new Response("Worker threw exception", { status: 500, headers: { "x-edge-error": "1" } });
  }
}

// ------------------------------------------------------------------------------------------
// Steps
// ------------------------------------------------------------------------------------------

async function runFetchStep(step, workers) {
  const w = workers.get(step.fetch);
  if (!w) throw new Error(`fetch step: unknown worker ${step.fetch}`);
  const init = { method: step.method ?? "GET", headers: new Headers(step.headers ?? {}) };
  if (step.json !== undefined) {
    init.body = JSON.stringify(step.json);
    if (!init.headers.has("content-type")) init.headers.set("content-type", "application/json");
  } else if (step.body !== undefined) init.body = step.body;
  lastErrors.delete(w.name);
  const ts = Date.now();
  const resp = await dispatchFetch(w, new Request(step.url ?? `https://${w.name}.edge/`, init));
  const text = await resp.text();
  const result = {
    kind: "fetch",
    worker: w.name,
    status: resp.status,
    headers: Object.fromEntries(resp.headers),
    body: text,
    ms: Date.now() - ts,
  };
  try {
    result.json = JSON.parse(text);
  } catch {}
  if (lastErrors.has(w.name)) result.error = lastErrors.get(w.name);
  return result;
}

// What workerd passes a scheduled() handler as `controller` (ScheduledController).
class ScheduledController {
  constructor(cron, scheduledTime) {
    this.cron = cron;
    this.scheduledTime = scheduledTime;
    this.type = "scheduled";
  }
  noRetry() {}
}

async function runScheduledStep(step, workers) {
  // workerd delivers a Cron Trigger to a Python `Default` entrypoint as a plain (not relaxed)
  // call of scheduled(controller, env, ctx) on a fresh instance, and keeps the event alive
  // until its ctx.waitUntil work settles.
  const w = workers.get(step.scheduled);
  if (!w) throw new Error(`scheduled step: unknown worker ${step.scheduled}`);
  const def = w.classes.workerEntrypoints.find((c) => c.className === "Default");
  const result = { kind: "scheduled", worker: w.name, cron: step.cron, ok: false };
  if (!def || !def.methodNames.includes("scheduled")) {
    return { ...result, error: `${w.name}: Default has no scheduled() handler` };
  }
  const ctx = new ExecutionContext();
  const controller = new ScheduledController(step.cron, step.scheduledTime ?? Date.now());
  const ts = Date.now();
  let inst;
  try {
    inst = w.bootstrap.construct(w.mainModule, "Default", ctx, w.env);
    await w.bootstrap.call_method(false, inst, "scheduled", controller, w.env, ctx);
    result.ok = true;
  } catch (e) {
    result.error = shortError(e);
  } finally {
    inst?.destroy?.();
  }
  await ctx.drain();
  for (const other of workers.values()) await other.backgroundCtx.drain();
  return { ...result, ms: Date.now() - ts };
}

function runControlStep(step, workers) {
  const w = workers.get(step.control);
  if (!w) throw new Error(`control step: unknown worker ${step.control}`);
  if ("evictBackground" in step) w.evictBackground = Boolean(step.evictBackground);
  return { kind: "control", worker: w.name, evictBackground: Boolean(w.evictBackground) };
}

async function runPythonStep(step, workers) {
  const w = workers.get(step.worker);
  if (!w) throw new Error(`${step.script ? "script" : "suite"} step: unknown worker ${step.worker}`);
  const dest = `/session/harness/${path.basename(step.script ?? step.suite)}`;
  w.py.FS.mkdirTree("/session/harness");
  w.py.FS.writeFile(dest, fs.readFileSync(step.script ?? step.suite));
  const ctx = new ExecutionContext();
  const ts = Date.now();
  const raw = step.script
    ? await w.bootstrap.run_script(dest, w.env, ctx)
    : await w.bootstrap.run_suite(dest, w.env, ctx, step.select ?? "");
  await ctx.drain();
  const parsed = JSON.parse(raw);
  const heapMB = w.py._module.HEAP8.length / (1024 * 1024);
  if (step.script) return { kind: "script", worker: w.name, ms: Date.now() - ts, heapMB, ...parsed };
  return { kind: "suite", worker: w.name, ms: Date.now() - ts, heapMB, tests: parsed };
}

// ------------------------------------------------------------------------------------------
// main
// ------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const plan = loadPlan(args);
  const r = plan.resources;

  // Scratch pools: throwaway resources, each used by one contract test ("every test starts
  // from an empty database/namespace/bucket/index"). Bound as SCRATCH_<KIND>_<i>.
  const sc = r.scratch ?? {};
  const range = (n) => [...Array(n ?? 0).keys()];
  const scratch = {
    d1: Object.fromEntries(range(sc.d1).map((i) => [`SCRATCH_D1_${i}`, `scratch-d1-${i}`])),
    kv: range(sc.kv).map((i) => `SCRATCH_KV_${i}`),
    r2: range(sc.r2).map((i) => `SCRATCH_R2_${i}`),
    vectorize: Object.fromEntries(
      range(sc.vectorize?.count).map((i) => [`SCRATCH_VECTORIZE_${i}`, sc.vectorize]),
    ),
  };
  const tmf = Date.now();
  let mf;
  let raw;
  try {
    mf = new Miniflare({
      modules: true,
      script: "export default { fetch() { return new Response('edge harness host') } }",
      compatibilityDate: "2026-06-10",
      d1Databases: { ...(r.d1 ?? {}), ...scratch.d1 },
      kvNamespaces: [...(r.kv ?? []), ...scratch.kv],
      r2Buckets: [...(r.r2 ?? []), ...scratch.r2],
      ...(args.persist
        ? { defaultPersistRoot: path.resolve(args.persist) }
        : { d1Persist: false, kvPersist: false, r2Persist: false }),
    });
    raw = await mf.getBindings();
  } catch (e) {
    log(`Miniflare failed to start: ${shortError(e)}`);
    out(`RESULT ${JSON.stringify({ ok: false, stage: "miniflare", error: shortError(e) })}`);
    exitCode = EXIT_MINIFLARE_START;
    return;
  }
  timing("miniflare start", Date.now() - tmf);

  const bindingObjects = {};
  for (const b of Object.keys({ ...(r.d1 ?? {}), ...scratch.d1 })) bindingObjects[b] = named(raw[b], "D1Database");
  for (const b of [...(r.kv ?? []), ...scratch.kv]) bindingObjects[b] = named(raw[b], "KvNamespace");
  for (const b of [...(r.r2 ?? []), ...scratch.r2]) bindingObjects[b] = named(raw[b], "R2Bucket");
  for (const [b, opts] of Object.entries({ ...(r.vectorize ?? {}), ...scratch.vectorize })) {
    bindingObjects[b] = new VectorizeIndexImpl(opts);
  }
  for (const b of r.ai ?? []) bindingObjects[b] = new Ai();
  plan.bindingObjects = bindingObjects;

  const result = { ok: true, migrations: {}, workers: {}, steps: [], timings: {} };
  const tmig = Date.now();
  for (const [binding, dir] of Object.entries(plan.migrations)) {
    if (!bindingObjects[binding]) throw new Error(`migrations for unknown D1 binding ${binding}`);
    result.migrations[binding] = await applyMigrations(bindingObjects[binding], dir, binding);
  }
  timing("migrations", Date.now() - tmig);

  const workers = new Map();
  for (const [name, spec] of Object.entries(plan.workers)) {
    const w = await loadWorker(name, spec, plan, workers);
    workers.set(name, w);
    result.workers[name] = {
      heapMB: Number(w.heapMB.toFixed(1)),
      modules: w.modules,
      entrypoints: w.classes,
      bindings: Object.keys(w.env),
    };
  }

  for (const step of plan.steps) {
    try {
      if (step.fetch) result.steps.push(await runFetchStep(step, workers));
      else if (step.script || step.suite) result.steps.push(await runPythonStep(step, workers));
      else if (step.scheduled) result.steps.push(await runScheduledStep(step, workers));
      else if (step.control) result.steps.push(runControlStep(step, workers));
      else throw new Error(`unknown step ${JSON.stringify(step)}`);
    } catch (e) {
      result.steps.push({ kind: "error", step, error: shortError(e) });
    }
  }
  for (const w of workers.values()) await w.backgroundCtx.drain();
  for (const [name, w] of workers) {
    result.workers[name].heapAfterStepsMB = Number((w.py._module.HEAP8.length / 1048576).toFixed(1));
  }

  await mf.dispose().catch((e) => log(`Miniflare dispose: ${shortError(e)}`));
  timing("total", Date.now() - t0);
  result.timings.totalMs = Date.now() - t0;
  const text = JSON.stringify(result);
  if (args.out) fs.writeFileSync(args.out, text);
  out(`RESULT ${text}`);
}

// process.exit() does not wait for a piped stdout to drain (the RESULT line can be long).
const exitAfterFlush = (code) => process.stdout.write("", () => process.exit(code));
let exitCode = 0;

main().then(
  () => exitAfterFlush(exitCode),
  (e) => {
    log(`harness failed: ${shortError(e)}`);
    out(`RESULT ${JSON.stringify({ ok: false, stage: "harness", error: shortError(e) })}`);
    exitAfterFlush(1);
  },
);
