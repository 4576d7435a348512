// Mixpanel's official Node library (npm `mixpanel`, pinned in package.json),
// pointed at our worker and changed in nothing else. It refuses to send an
// API secret over plain http, so the worker runs with `wrangler dev
// --local-protocol https` (a self-signed certificate: this process alone
// skips the certificate check).
//
// Every public method runs with `verbose` off (the library reads any answer
// but `1` as an error) and on (`{"status":1,"error":null}`), and after each
// call the test checks the exact stored rows, profile, group or identity
// state, and that the error the library reported (or not) matches what was
// stored.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { startWorker, sleep, SECRET, TOKEN } from "../e2e/harness.mjs";

const Mixpanel = createRequire(import.meta.url)("mixpanel");
const LIB_VERSION = createRequire(import.meta.url)("mixpanel/package.json").version;

let worker;
before(async () => (worker = await startWorker({ https: true })));
after(async () => worker?.stop());

const uid = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 12)}`;
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** A library instance pointed at the worker. */
function client({ verbose, secret = SECRET, token = TOKEN, ...config } = {}) {
  const { port } = new URL(worker.base);
  return Mixpanel.init(token, { host: `127.0.0.1:${port}`, protocol: "https", keepAlive: false, logger: quiet, verbose, secret, ...config });
}

/** Runs a library call whose last argument is its callback; resolves to
 *  the error the library reported (undefined/null on success). */
const call = (fn) => new Promise((resolve) => fn((error) => resolve(error)));

async function getJson(path) {
  const r = await fetch(`${worker.base}${path}`, { headers: { "x-api-key": SECRET } });
  return { status: r.status, body: await r.json() };
}

/** The stored events of one distinct_id, oldest first, without arrival time. */
async function rows(distinctId) {
  const { body } = await getJson("/public/events?limit=10000");
  return body.events
    .filter((e) => e.distinct_id === distinctId)
    .map(({ received_at, ...rest }) => rest)
    .sort((a, b) => a.timestamp - b.timestamp || a.event.localeCompare(b.event));
}
const profile = async (id) => {
  const { status, body } = await getJson(`/api/profile?distinct_id=${encodeURIComponent(id)}`);
  return status === 200 ? body.properties : null;
};
const group = async (key, id) => {
  const { status, body } = await getJson(`/api/group?group_key=${encodeURIComponent(key)}&group_id=${encodeURIComponent(id)}`);
  return status === 200 ? body.properties : null;
};
const identity = async (id) => {
  const { body } = await getJson(`/api/identity?distinct_id=${encodeURIComponent(id)}`);
  return [body.canonical_id, body.distinct_ids];
};

/** Polls `read()` until it deep-equals `expected` (the queue consumer
 *  stores a moment after the reply); fails with the last value. */
async function waitUntil(read, expected, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!isDeepEqual(value, expected) && Date.now() < deadline) {
    await sleep(250);
    value = await read();
  }
  assert.deepEqual(value, expected);
  return value;
}
const isDeepEqual = (a, b) => {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
};

/** A marker event after the calls under test, seen stored: what they
 *  queued has had its turn (the signal to assert absence after). */
async function settled() {
  const marker = uid("marker");
  assert.ifError(await call((cb) => client({ verbose: true }).track("marker", { distinct_id: marker }, cb)));
  await waitUntil(async () => (await rows(marker)).length, 1);
}

/** A stored event as `/public/events` lists it (the library sends ip=0). */
const row = (event, distinctId, timestamp, insertId, source, properties) => ({
  event, distinct_id: distinctId, timestamp, insert_id: insertId, device_id: null, properties,
  url: null, referrer: null, title: null, screen: null, source, country: null,
});
const HEX32 = /^[0-9a-f]{32}$/;
const lastSeen = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);

for (const verbose of [false, true]) {
  describe(`verbose ${verbose ? "on" : "off"}`, () => {
    test("track, and the same call twice: two events (no $insert_id is sent, so none is merged)", async () => {
      const user = uid("node-track");
      const mp = client({ verbose });
      const before = Date.now();
      for (let i = 0; i < 2; i++) {
        assert.ifError(await call((cb) => mp.track("Login", { distinct_id: user, plan: "pro" }, cb)));
      }
      const stored = await waitUntil(async () => (await rows(user)).length, 2) && (await rows(user));
      for (const r of stored) {
        assert.match(r.insert_id, HEX32);
        assert.ok(r.timestamp >= before - 1000 && r.timestamp <= Date.now() + 1000);
        assert.deepEqual(r, row("Login", user, r.timestamp, r.insert_id, "mixpanel_track", { plan: "pro", $lib_version: LIB_VERSION }));
      }
      assert.notEqual(stored[0].insert_id, stored[1].insert_id);
    });

    test("track with a time and $insert_id: exact row, and a resend is one row", async () => {
      const user = uid("node-timed");
      const mp = client({ verbose });
      const at = new Date(Date.now() - 60_000);
      for (let i = 0; i < 2; i++) {
        assert.ifError(await call((cb) => mp.track("Paid", { distinct_id: user, time: at, $insert_id: `paid-${user.slice(-10)}` }, cb)));
      }
      await waitUntil(() => rows(user), [row("Paid", user, at.getTime(), `paid-${user.slice(-10)}`, "mixpanel_track", { $lib_version: LIB_VERSION })]);
      await settled();
      assert.equal((await rows(user)).length, 1);
    });

    test("track_batch: every event of the batch", async () => {
      const user = uid("node-batch");
      const at = Date.now() - 30_000;
      const list = Array.from({ length: 3 }, (_, i) => ({ event: `Step ${i}`, properties: { distinct_id: user, time: at + i * 1000, step: i } }));
      const errors = await call((cb) => client({ verbose }).track_batch(list, cb));
      assert.equal(errors, null);
      const stored = await waitUntil(async () => (await rows(user)).length, 3) && (await rows(user));
      assert.deepEqual(stored.map((r) => [r.event, r.timestamp, r.properties.step]), [["Step 0", at, 0], ["Step 1", at + 1000, 1], ["Step 2", at + 2000, 2]]);
    });

    test("import: GET /import with the secret, its time in milliseconds", async () => {
      const user = uid("node-import");
      const when = new Date(Date.now() - 10 * 86_400_000);
      assert.ifError(await call((cb) => client({ verbose }).import("Old Purchase", when, { distinct_id: user, amount: 42 }, cb)));
      const [stored] = await waitUntil(async () => (await rows(user)).length, 1) && (await rows(user));
      assert.match(stored.insert_id, HEX32);
      assert.deepEqual(stored, row("Old Purchase", user, when.getTime(), stored.insert_id, "mixpanel_import", { amount: 42, $lib_version: LIB_VERSION }));
    });

    test("import with service-account credentials (project_id in the query)", async () => {
      const user = uid("node-sa");
      const credentials = new Mixpanel.ServiceAccountCredentials("svc-account", SECRET, "demo");
      const when = Date.now() - 3 * 86_400_000;
      const mp = client({ verbose, secret: undefined, credentials });
      assert.ifError(await call((cb) => mp.import("Service Import", when, { distinct_id: user }, cb)));
      await waitUntil(async () => (await rows(user)).map((r) => [r.event, r.timestamp]), [["Service Import", when]]);
    });

    test("import_batch: a form POST of events without $insert_id, each stored; then the same batch again, kept again", async () => {
      const user = uid("node-ib");
      const when = Date.now() - 5 * 86_400_000;
      const list = () => [
        { event: "Imported A", properties: { distinct_id: user, time: new Date(when) } },
        { event: "Imported B", properties: { distinct_id: user, time: when + 1000 } },
      ];
      assert.equal(await call((cb) => client({ verbose }).import_batch(list(), cb)), null);
      await waitUntil(async () => (await rows(user)).map((r) => [r.event, r.timestamp]), [["Imported A", when], ["Imported B", when + 1000]]);
      // The library's documented examples carry no $insert_id: Mixpanel keeps
      // each event sent, and so do we.
      assert.equal(await call((cb) => client({ verbose }).import_batch(list(), cb)), null);
      await waitUntil(async () => (await rows(user)).length, 4);
    });

    test("alias: $create_alias is stored and joins the alias to the original", async () => {
      const original = uid("node-orig");
      const alias = uid("node-alias");
      assert.ifError(await call((cb) => client({ verbose }).alias(original, alias, cb)));
      await waitUntil(() => identity(alias), [original, [alias, original].sort()]);
      const [stored] = await rows(original);
      assert.deepEqual(stored, row("$create_alias", original, stored.timestamp, stored.insert_id, "mixpanel_track", { alias, $lib_version: LIB_VERSION }));
    });

    test("people: every method builds the exact profile", async () => {
      const user = uid("node-people");
      const mp = client({ verbose });
      const t = Date.now() - 3_600_000;
      const at = (offset) => ({ $time: new Date(t + offset) });
      const step = async (fn, expected) => {
        assert.ifError(await call(fn));
        await waitUntil(() => profile(user), expected);
      };
      let p = { name: "Ada", plan: "free", $last_seen: lastSeen(t) };
      await step((cb) => mp.people.set(user, { name: "Ada", plan: "free" }, at(0), cb), p);
      p = { ...p, first_plan: "free" };
      await step((cb) => mp.people.set_once(user, "first_plan", "free", at(10_000), cb), p);
      p = { ...p, logins: 3, $last_seen: lastSeen(t + 20_000) };
      await step((cb) => mp.people.increment(user, "logins", 3, at(20_000), cb), p);
      p = { ...p, pages: ["home"], $last_seen: lastSeen(t + 30_000) };
      await step((cb) => mp.people.append(user, "pages", "home", at(30_000), cb), p);
      p = { ...p, tags: ["a", "b"] };
      await step((cb) => mp.people.union(user, { tags: ["a", "b"] }, at(40_000), cb), p);
      p = { ...p, tags: ["b"] };
      await step((cb) => mp.people.remove(user, { tags: "a" }, at(50_000), cb), p);
      const { first_plan, ...withoutFirstPlan } = p;
      p = withoutFirstPlan;
      await step((cb) => mp.people.unset(user, "first_plan", at(60_000), cb), p);
      p = { ...p, $transactions: [{ $amount: 9.99, sku: "x-1" }], $last_seen: lastSeen(t + 70_000) };
      await step((cb) => mp.people.track_charge(user, 9.99, { sku: "x-1" }, at(70_000), cb), p);
      // The Node library clears charges with `$set: {$transactions: []}`.
      p = { ...p, $transactions: [], $last_seen: lastSeen(t + 80_000) };
      await step((cb) => mp.people.clear_charges(user, at(80_000), cb), p);
      // $ignore_time keeps $last_seen; $ip "0" keeps the profile unplaced.
      p = { ...p, quiet: true };
      await step((cb) => mp.people.set(user, { quiet: true }, { $ignore_time: true, $ip: "0" }, cb), p);
      await step((cb) => mp.people.delete_user(user, cb), null);
    });

    test("groups: every method builds the exact group", async () => {
      const company = uid("Acme");
      const mp = client({ verbose });
      const step = async (fn, expected) => {
        assert.ifError(await call(fn));
        await waitUntil(() => group("company", company), expected);
      };
      let g = { industry: "widgets", size: 10 };
      await step((cb) => mp.groups.set("company", company, { industry: "widgets", size: 10 }, cb), g);
      g = { ...g, founded: 1999 };
      await step((cb) => mp.groups.set_once("company", company, "founded", 1999, cb), g);
      g = { ...g, products: ["anvil", "rocket"] };
      await step((cb) => mp.groups.union("company", company, { products: ["anvil", "rocket"] }, cb), g);
      g = { ...g, products: ["rocket"] };
      await step((cb) => mp.groups.remove("company", company, { products: "anvil" }, cb), g);
      const { size, ...rest } = g;
      await step((cb) => mp.groups.unset("company", company, "size", cb), rest);
      await step((cb) => mp.groups.delete_group("company", company, cb), null);
    });

    test("failures are reported and store nothing", async () => {
      const user = uid("node-fail");
      // An unknown token.
      assert.ok(await call((cb) => client({ verbose, token: "not-a-token" }).track("Nope", { distinct_id: user }, cb)));
      // A wrong secret, on import and import_batch.
      const when = Date.now() - 86_400_000;
      assert.ok(await call((cb) => client({ verbose, secret: "wrong" }).import("Nope", when, { distinct_id: user }, cb)));
      // A batch with one event the worker cannot take (no distinct_id on
      // an import): refused whole, the valid one is not stored either.
      const bad = [
        { event: "Valid", properties: { distinct_id: user, time: when } },
        { event: "Invalid", properties: { time: when } },
      ];
      const errors = await call((cb) => client({ verbose }).import_batch(bad, cb));
      assert.equal(errors?.length, 1);
      // Service-account credentials for another project.
      const other = new Mixpanel.ServiceAccountCredentials("svc", SECRET, "other-project");
      assert.ok(await call((cb) => client({ verbose, secret: undefined, credentials: other }).import("Nope", when, { distinct_id: user }, cb)));
      await settled();
      assert.deepEqual(await rows(user), []);
    });
  });
}

test("test: true asks for test=1: validated and answered, nothing stored", async () => {
  const user = uid("node-test");
  assert.ifError(await call((cb) => client({ verbose: true, test: true }).track("Dry Run", { distinct_id: user }, cb)));
  await settled();
  assert.deepEqual(await rows(user), []);
});
