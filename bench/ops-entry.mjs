// The built worker with a counter on every binding call, for the cost
// section (bench/cost.mjs) only: bench/cost.mjs copies this file beside a
// copy of build/index.js and runs it under `wrangler dev`. The worker's own
// code is unchanged; its `env` is wrapped so that each KV, D1, Queue and R2
// call is counted as the runtime sees it (D1 rows from each result's own
// `meta`), and `GET /__bench/ops` answers the counts (`?reset=1` zeroes them).
import Worker from "./index.js";

const zero = () => ({
  requests: 0, queueInvocations: 0, scheduledInvocations: 0,
  kvReads: 0, kvReadCalls: 0, kvWrites: 0, kvDeletes: 0, kvLists: 0,
  queueMessages: 0, queueOps64k: 0, queueSendCalls: 0,
  d1Queries: 0, d1Batches: 0, d1RowsRead: 0, d1RowsWritten: 0,
  r2Writes: 0, r2Reads: 0,
  // D1 rows per statement (its SQL's first words), to see where they go.
  d1BySql: {},
});
const sqlOf = new WeakMap();
let ops = zero();

const ops64k = (body) => {
  let bytes;
  try {
    bytes = typeof body === "string" ? new TextEncoder().encode(body).length : JSON.stringify(body).length;
  } catch {
    bytes = 1;
  }
  return Math.max(1, Math.ceil(bytes / 65_536));
};

function countResult(result, stmt) {
  const meta = result?.meta;
  if (meta) {
    ops.d1RowsRead += meta.rows_read ?? 0;
    ops.d1RowsWritten += meta.rows_written ?? 0;
    const sql = (sqlOf.get(stmt) ?? "?").replace(/\s+/g, " ").trim().slice(0, 48);
    const row = (ops.d1BySql[sql] ??= { statements: 0, rowsRead: 0, rowsWritten: 0 });
    row.statements += 1;
    row.rowsRead += meta.rows_read ?? 0;
    row.rowsWritten += meta.rows_written ?? 0;
  }
  return result;
}

const patched = new WeakSet();
function patchStatement(stmt) {
  const proto = Object.getPrototypeOf(stmt);
  if (!proto || patched.has(proto)) return stmt;
  patched.add(proto);
  const all = proto.all;
  const bind = proto.bind;
  if (typeof bind === "function") {
    proto.bind = function (...args) {
      const bound = bind.apply(this, args);
      if (sqlOf.has(this)) sqlOf.set(bound, sqlOf.get(this));
      return bound;
    };
  }
  for (const name of ["all", "run", "first", "raw"]) {
    const original = proto[name];
    if (typeof original !== "function") continue;
    proto[name] = async function (...args) {
      ops.d1Queries += 1;
      if (name === "first") {
        // `first` hides the meta: run it as `all` (the same statement, so
        // the same rows read) and answer what `first` would.
        const result = countResult(await all.call(this), this);
        const row = result.results?.[0] ?? null;
        return args[0] ? (row ? row[args[0]] ?? null : null) : row;
      }
      const out = await original.apply(this, args);
      if (name === "all" || name === "run") countResult(out, this);
      return out;
    };
  }
  return stmt;
}

function wrapD1(db) {
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "constructor") return value;
      if (prop === "prepare") {
        return (...args) => {
          const stmt = patchStatement(value.apply(target, args));
          sqlOf.set(stmt, String(args[0]));
          return stmt;
        };
      }
      if (prop === "batch") {
        return async (statements) => {
          ops.d1Batches += 1;
          ops.d1Queries += statements.length;
          const results = await value.call(target, statements);
          results.forEach((r, i) => countResult(r, statements[i]));
          return results;
        };
      }
      return value.bind(target);
    },
  });
}

function wrapKv(kv) {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "constructor") return value;
      const counted = {
        get: (keys) => { ops.kvReadCalls += 1; ops.kvReads += Array.isArray(keys) ? keys.length : 1; },
        getWithMetadata: (keys) => { ops.kvReadCalls += 1; ops.kvReads += Array.isArray(keys) ? keys.length : 1; },
        put: () => { ops.kvWrites += 1; },
        delete: () => { ops.kvDeletes += 1; },
        list: () => { ops.kvLists += 1; },
      }[prop];
      return (...args) => {
        counted?.(args[0]);
        return value.apply(target, args);
      };
    },
  });
}

function wrapQueue(queue) {
  return new Proxy(queue, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "constructor") return value;
      if (prop === "send") {
        return (body, options) => {
          ops.queueSendCalls += 1;
          ops.queueMessages += 1;
          ops.queueOps64k += ops64k(body);
          return value.call(target, body, options);
        };
      }
      if (prop === "sendBatch") {
        return (messages, options) => {
          ops.queueSendCalls += 1;
          for (const m of messages) {
            ops.queueMessages += 1;
            ops.queueOps64k += ops64k(m.body);
          }
          return value.call(target, messages, options);
        };
      }
      return value.bind(target);
    },
  });
}

function wrapR2(bucket) {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "constructor") return value;
      return (...args) => {
        if (prop === "put" || prop === "delete" || prop === "createMultipartUpload") ops.r2Writes += 1;
        if (prop === "get" || prop === "head" || prop === "list") ops.r2Reads += 1;
        return value.apply(target, args);
      };
    },
  });
}

const wrappers = { DB: wrapD1, DEDUP: wrapKv, EVENTS: wrapQueue, ARCHIVE: wrapR2 };
function wrapEnv(env) {
  const cache = new Map();
  return new Proxy(env, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      const wrap = wrappers[prop];
      if (!wrap || value == null) return value;
      if (!cache.has(prop)) cache.set(prop, wrap(value));
      return cache.get(prop);
    },
  });
}

function opsAnswer(url) {
  const body = JSON.stringify(ops);
  if (url.searchParams.get("reset") === "1") ops = zero();
  return new Response(body, { headers: { "content-type": "application/json" } });
}

const isClass = typeof Worker === "function";
let Entry;
if (isClass) {
  Entry = class extends Worker {
    constructor(ctx, env) {
      super(ctx, wrapEnv(env));
    }
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname === "/__bench/ops") return opsAnswer(url);
      ops.requests += 1;
      return super.fetch(request);
    }
    async queue(batch) {
      ops.queueInvocations += 1;
      return super.queue(batch);
    }
    async scheduled(event) {
      ops.scheduledInvocations += 1;
      return super.scheduled(event);
    }
  };
} else {
  Entry = {
    ...Worker,
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      if (url.pathname === "/__bench/ops") return opsAnswer(url);
      ops.requests += 1;
      return Worker.fetch(request, wrapEnv(env), ctx);
    },
    async queue(batch, env, ctx) {
      ops.queueInvocations += 1;
      return Worker.queue(batch, wrapEnv(env), ctx);
    },
    async scheduled(event, env, ctx) {
      ops.scheduledInvocations += 1;
      return Worker.scheduled(event, wrapEnv(env), ctx);
    },
  };
}
export default Entry;
