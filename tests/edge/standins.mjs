// JS stand-ins for the two bindings Miniflare cannot provide offline: Vectorize and Workers AI.
// They implement the documented binding API and limits (Cloudflare docs, 2025-26). Their class
// names are the runtime's (`VectorizeIndexImpl`, `Ai`) because the Python SDK wraps bindings by
// JS constructor name. Nothing here is a model: results say `stand_in: true` where a shape allows.

const enc = new TextEncoder();
const bytes = (s) => enc.encode(String(s)).length;

export class VectorizeError extends Error {
  constructor(code, message) {
    super(`VECTOR_${code}: ${message}`);
    this.name = "Error";
  }
}

const FILTER_OPS = new Set(["$eq", "$ne", "$in", "$nin", "$lt", "$lte", "$gt", "$gte"]);
const MAX_DIMS = 1536;
const MAX_UPSERT = 1000;
const MAX_TOPK = 100;
const MAX_TOPK_WITH_DATA = 20;
const MAX_METADATA_BYTES = 10 * 1024;
const MAX_ID_BYTES = 64;
const MAX_NAMESPACE_BYTES = 64;
const INDEXED_STRING_BYTES = 64;
const MAX_FILTER_BYTES = 2048;

function truncUtf8(s, n) {
  const b = enc.encode(s);
  return b.length <= n ? s : new TextDecoder().decode(b.slice(0, n)).replace(/\uFFFD$/, "");
}

function getPath(obj, path) {
  let cur = obj;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object" || !(part in cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function indexable(v) {
  // Metadata indexes hold string (first 64 bytes), number and boolean values.
  if (typeof v === "string") return truncUtf8(v, INDEXED_STRING_BYTES);
  if (typeof v === "number" || typeof v === "boolean") return v;
  return undefined;
}

function cmp(a, b) {
  if (typeof a !== typeof b) return NaN;
  return a < b ? -1 : a > b ? 1 : 0;
}

function matchCond(value, cond) {
  const v = indexable(value);
  const ops =
    cond !== null && typeof cond === "object" && !Array.isArray(cond) ? cond : { $eq: cond };
  for (const [op, raw] of Object.entries(ops)) {
    if (!FILTER_OPS.has(op)) throw new VectorizeError(40006, `unsupported filter operator ${op}`);
    if (op === "$in" || op === "$nin") {
      if (!Array.isArray(raw)) throw new VectorizeError(40006, `${op} needs an array`);
      const hit = v !== undefined && raw.map(indexable).some((x) => x === v);
      if (op === "$in" ? !hit : hit) return false;
      continue;
    }
    if (Array.isArray(raw) || (raw !== null && typeof raw === "object")) {
      throw new VectorizeError(40006, `${op} needs a scalar`);
    }
    const want = raw === null ? null : indexable(raw);
    if (op === "$eq") {
      if (want === null ? v !== undefined : v !== want) return false;
    } else if (op === "$ne") {
      if (want === null ? v === undefined : v === want) return false;
    } else {
      if (v === undefined) return false;
      const c = cmp(v, want);
      if (Number.isNaN(c)) return false;
      if (op === "$lt" && !(c < 0)) return false;
      if (op === "$lte" && !(c <= 0)) return false;
      if (op === "$gt" && !(c > 0)) return false;
      if (op === "$gte" && !(c >= 0)) return false;
    }
  }
  return true;
}

function checkFilter(filter) {
  if (filter === undefined || filter === null) return;
  if (typeof filter !== "object" || Array.isArray(filter)) {
    throw new VectorizeError(40006, "filter must be an object");
  }
  if (bytes(JSON.stringify(filter)) > MAX_FILTER_BYTES) {
    throw new VectorizeError(40006, `filter exceeds ${MAX_FILTER_BYTES} bytes`);
  }
  for (const key of Object.keys(filter)) {
    if (key.startsWith("$")) {
      throw new VectorizeError(40006, `top-level operator ${key} is not supported (no $or/$and)`);
    }
  }
}

function plain(v) {
  // Values arriving from Pyodide may be typed arrays or Python-converted objects.
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** Stand-in for a Vectorize (V2) index binding. Exact cosine/euclidean/dot search. */
export class VectorizeIndexImpl {
  #dims;
  #metric;
  #indexes;
  #store = new Map(); // id -> vector (ids are unique per index; namespace is an attribute)
  #mutation = 0;

  constructor({ dimensions = 384, metric = "cosine", metadataIndexes = null } = {}) {
    if (dimensions > MAX_DIMS) throw new Error(`dimensions ${dimensions} > ${MAX_DIMS}`);
    this.#dims = dimensions;
    this.#metric = metric;
    // null: every metadata property is filterable; a list: only those (like real indexes).
    this.#indexes = metadataIndexes;
  }

  #mutationId() {
    this.#mutation += 1;
    return { mutationId: `standin-${this.#mutation}` };
  }

  #validate(vectors) {
    if (!Array.isArray(vectors) && !(vectors && typeof vectors.length === "number")) {
      throw new VectorizeError(40001, "vectors must be an array");
    }
    const list = Array.from(vectors);
    if (list.length > MAX_UPSERT) {
      throw new VectorizeError(40002, `too many vectors: ${list.length} > ${MAX_UPSERT}`);
    }
    return list.map((raw) => {
      const id = String(raw.id);
      if (!id || bytes(id) > MAX_ID_BYTES) throw new VectorizeError(40003, `bad id ${id}`);
      const values = Array.from(raw.values ?? [], Number);
      if (values.length !== this.#dims) {
        throw new VectorizeError(
          40004,
          `vector ${id} has ${values.length} dimensions, index expects ${this.#dims}`,
        );
      }
      if (values.some((x) => !Number.isFinite(x))) {
        throw new VectorizeError(40004, `vector ${id} has non-finite values`);
      }
      const namespace = raw.namespace == null ? "" : String(raw.namespace);
      if (bytes(namespace) > MAX_NAMESPACE_BYTES) {
        throw new VectorizeError(40005, `namespace longer than ${MAX_NAMESPACE_BYTES} bytes`);
      }
      const metadata = raw.metadata == null ? undefined : plain(raw.metadata);
      if (metadata !== undefined && bytes(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
        throw new VectorizeError(40005, `metadata of ${id} exceeds ${MAX_METADATA_BYTES} bytes`);
      }
      return { id, values, namespace, metadata };
    });
  }

  async insert(vectors) {
    for (const v of this.#validate(vectors)) {
      if (!this.#store.has(v.id)) this.#store.set(v.id, v);
    }
    return this.#mutationId();
  }

  async upsert(vectors) {
    // Upserting an existing id replaces it, in whatever namespace it was (moves namespaces).
    for (const v of this.#validate(vectors)) this.#store.set(v.id, v);
    return this.#mutationId();
  }

  #score(a, b) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    let dist = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
      dist += (a[i] - b[i]) ** 2;
    }
    if (this.#metric === "euclidean") return Math.sqrt(dist);
    if (this.#metric === "dot-product") return dot;
    return na && nb ? dot / Math.sqrt(na * nb) : 0;
  }

  async query(vector, options = {}) {
    const opts = plain(options) ?? {};
    const q = Array.from(vector ?? [], Number);
    if (q.length !== this.#dims) {
      throw new VectorizeError(
        40004,
        `query has ${q.length} dimensions, index expects ${this.#dims}`,
      );
    }
    const topK = opts.topK ?? 5;
    const returnValues = Boolean(opts.returnValues);
    let returnMetadata = opts.returnMetadata ?? "none";
    if (returnMetadata === true) returnMetadata = "all";
    if (returnMetadata === false) returnMetadata = "none";
    if (!["none", "indexed", "all"].includes(returnMetadata)) {
      throw new VectorizeError(40006, `bad returnMetadata ${returnMetadata}`);
    }
    const cap = returnValues || returnMetadata === "all" ? MAX_TOPK_WITH_DATA : MAX_TOPK;
    if (!Number.isInteger(topK) || topK < 1 || topK > cap) {
      throw new VectorizeError(40007, `topK must be 1..${cap} with these options, got ${topK}`);
    }
    checkFilter(opts.filter);
    const namespace = opts.namespace == null ? null : String(opts.namespace);
    const matches = [];
    for (const v of this.#store.values()) {
      if (namespace !== null && v.namespace !== namespace) continue;
      if (opts.filter && !this.#passes(v, opts.filter)) continue;
      matches.push({ v, score: this.#score(q, v.values) });
    }
    matches.sort((a, b) =>
      this.#metric === "euclidean" ? a.score - b.score : b.score - a.score,
    );
    const out = matches.slice(0, topK).map(({ v, score }) => {
      const m = { id: v.id, score };
      if (v.namespace) m.namespace = v.namespace;
      if (returnValues) m.values = v.values.slice();
      if (returnMetadata === "all" && v.metadata !== undefined) m.metadata = plain(v.metadata);
      if (returnMetadata === "indexed" && v.metadata !== undefined) {
        m.metadata = {};
        for (const [k, val] of Object.entries(v.metadata)) {
          if (this.#indexes === null || this.#indexes.includes(k)) {
            const iv = indexable(val);
            if (iv !== undefined) m.metadata[k] = iv;
          }
        }
      }
      return m;
    });
    return { count: out.length, matches: out };
  }

  #passes(v, filter) {
    for (const [path, cond] of Object.entries(filter)) {
      if (this.#indexes !== null && !this.#indexes.includes(path)) return false;
      if (!matchCond(getPath(v.metadata ?? {}, path), cond)) return false;
    }
    return true;
  }

  async queryById(id, options = {}) {
    const opts = plain(options) ?? {};
    const v = this.#store.get(String(id));
    if (!v) return { count: 0, matches: [] };
    return this.query(v.values, opts);
  }

  async getByIds(ids) {
    const want = new Set(Array.from(ids, String));
    const out = [];
    for (const v of this.#store.values()) {
      if (want.has(v.id)) {
        const r = { id: v.id, values: v.values.slice() };
        if (v.namespace) r.namespace = v.namespace;
        if (v.metadata !== undefined) r.metadata = plain(v.metadata);
        out.push(r);
      }
    }
    return out;
  }

  async deleteByIds(ids) {
    const want = new Set(Array.from(ids, String));
    for (const id of want) this.#store.delete(id);
    return this.#mutationId();
  }

  async describe() {
    return {
      vectorCount: this.#store.size,
      dimensions: this.#dims,
      processedUpToDatetime: new Date().toISOString(),
      processedUpToMutation: `standin-${this.#mutation}`,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Workers AI stand-in
// ---------------------------------------------------------------------------------------------

const EMBED_MODELS = {
  "@cf/baai/bge-small-en-v1.5": 384,
  "@cf/baai/bge-base-en-v1.5": 768,
  "@cf/baai/bge-large-en-v1.5": 1024,
};
const RERANK_MODELS = new Set(["@cf/baai/bge-reranker-base"]);
const MAX_EMBED_TEXTS = 100;
const MAX_TOKENS_PER_TEXT = 512;

export function tokens(text) {
  return String(text).toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of enc.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Deterministic hashed bag-of-words embedding, L2-normalised. */
export function hashEmbed(text, dims = 384) {
  const v = new Array(dims).fill(0);
  for (const tok of tokens(text)) {
    const h = fnv1a(tok);
    v[h % dims] += h & 0x80000000 ? -1 : 1;
  }
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return n ? v.map((x) => x / n) : v;
}

function overlapScore(query, text) {
  const q = new Set(tokens(query));
  const t = tokens(text);
  if (!q.size || !t.length) return 0;
  let hit = 0;
  for (const tok of new Set(t)) if (q.has(tok)) hit += 1;
  const raw = hit / Math.sqrt(q.size * new Set(t).size);
  return 1 / (1 + Math.exp(-8 * (raw - 0.3))); // squashed into (0,1) like a reranker logit
}

export class AiError extends Error {
  constructor(message) {
    super(message);
    this.name = "Error";
  }
}

/** Stand-in for the Workers AI binding (`env.AI.run(model, inputs)`). */
export class Ai {
  #textModels;

  constructor({ textModels = null } = {}) {
    this.#textModels = textModels; // null: any "@cf/" model that is not embed/rerank generates
  }

  get standIn() {
    return {
      embeddings: "hashed bag-of-words (FNV-1a, signed), L2-normalised",
      reranker: "token-overlap score squashed by a logistic",
      generation: "extractive echo of the prompt's context",
    };
  }

  async run(model, inputs = {}, _options = {}) {
    const input = plain(inputs) ?? {};
    if (model in EMBED_MODELS) return this.#embed(EMBED_MODELS[model], input);
    if (RERANK_MODELS.has(model)) return this.#rerank(input);
    if (model === "@cf/deepgram/aura-1") return this.#speak(input);
    if (typeof model === "string" && model.startsWith("@cf/")) {
      if (this.#textModels === null || this.#textModels.includes(model)) {
        return this.#generate(model, input);
      }
    }
    throw new AiError(`5007: No such model ${model} or task`);
  }

  /** aura-1 as the binding answers it: a ReadableStream of audio (here 16-bit PCM WAV of
   *  silence, 0.1 s a word — a stand-in for the speech, the real shape for the bytes). */
  #speak(input) {
    if (typeof input.text !== "string" || !input.text) throw new AiError("5006: text is required");
    if (input.encoding !== "linear16" || input.container !== "wav") {
      throw new AiError("5006: the stand-in speaks linear16 in a wav container only");
    }
    const rate = 24000;
    const samples = 2400 * Math.max(1, Math.min(50, input.text.split(/\s+/).length));
    const size = samples * 2;
    const buf = new Uint8Array(44 + size);
    const view = new DataView(buf.buffer);
    const put = (at, s) => { for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i); };
    put(0, "RIFF"); view.setUint32(4, 36 + size, true); put(8, "WAVE"); put(12, "fmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true);
    view.setUint16(32, 2, true); view.setUint16(34, 16, true);
    put(36, "data"); view.setUint32(40, size, true);
    return new ReadableStream({
      start(controller) {
        controller.enqueue(buf.subarray(0, 1000)); // in pieces, as a network stream arrives
        controller.enqueue(buf.subarray(1000));
        controller.close();
      },
    });
  }

  #embed(dims, input) {
    const texts = Array.isArray(input.text) ? input.text : [input.text];
    if (texts.length === 0 || texts.some((t) => typeof t !== "string")) {
      throw new AiError("5006: text must be a string or an array of strings");
    }
    if (texts.length > MAX_EMBED_TEXTS) {
      throw new AiError(`5006: at most ${MAX_EMBED_TEXTS} texts per call, got ${texts.length}`);
    }
    for (const t of texts) {
      if (tokens(t).length > MAX_TOKENS_PER_TEXT) {
        throw new AiError(`5006: a text exceeds ${MAX_TOKENS_PER_TEXT} tokens`);
      }
    }
    return { shape: [texts.length, dims], data: texts.map((t) => hashEmbed(t, dims)), pooling: "mean" };
  }

  #rerank(input) {
    if (typeof input.query !== "string" || !Array.isArray(input.contexts)) {
      throw new AiError("5006: reranker needs query and contexts[{text}]");
    }
    let scored = input.contexts.map((c, id) => ({ id, score: overlapScore(input.query, c.text) }));
    scored.sort((a, b) => b.score - a.score || a.id - b.id);
    if (input.top_k) scored = scored.slice(0, input.top_k);
    return { response: scored };
  }

  #generate(model, input) {
    let prompt = "";
    if (Array.isArray(input.messages)) {
      const user = input.messages.filter((m) => m.role === "user");
      prompt = user.length ? String(user[user.length - 1].content) : "";
    } else {
      prompt = String(input.prompt ?? "");
    }
    const words = tokens(prompt);
    const maxTokens = input.max_tokens ?? 256;
    const text = `[stand-in ${model}] ${prompt.split(/\s+/).slice(0, maxTokens).join(" ")}`.trim();
    const usage = {
      prompt_tokens: words.length,
      completion_tokens: Math.min(words.length, maxTokens) + 3,
      total_tokens: words.length + Math.min(words.length, maxTokens) + 3,
    };
    const format = input.response_format;
    if (format != null) {
      // Workers AI JSON mode: `response` is the object. It refuses JSON mode on streams.
      if (input.stream) throw new AiError("5023: JSON Schema mode is not supported with stream mode");
      const schema = format.json_schema ?? {};
      if (format.type !== "json_schema" || !(schema.properties && "claims" in schema.properties)) {
        throw new AiError("5006: the stand-in fills only the grounded claims schema");
      }
      // One claim: the first sentence of source [1], quoting itself.
      const first = /^\[1\] ([^\n]*?[.!?])(?:\s|$)/m.exec(prompt);
      const claims = first ? [{ text: first[1], source: 1, quote: first[1] }] : [];
      return { response: { claims }, usage };
    }
    if (input.stream) {
      const chunks = text.split(/(?<=\s)/);
      return new ReadableStream({
        start(controller) {
          for (const c of chunks) controller.enqueue(enc.encode(`data: ${JSON.stringify({ response: c })}\n\n`));
          controller.enqueue(enc.encode(`data: ${JSON.stringify({ response: "", usage })}\n\n`));
          controller.enqueue(enc.encode("data: [DONE]\n\n"));
          controller.close();
        },
      });
    }
    return { response: text, usage };
  }
}
