// The requests Mixpanel's other official server libraries send (Ruby
// `mixpanel-ruby`, Go `mixpanel-go`, Java `mixpanel-java`, PHP
// `mixpanel-php`), built here as their source builds them, and each reply
// read the way that library reads it. The libraries themselves need
// runtimes this project does not install; the Python and Node libraries
// run unchanged in tests/clients. What each library's request looks like is
// noted at each case (from reading its source: method, path, parameters,
// body encoding, authentication, and how the answer is judged).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { startWorker, exportEvents, waitForEvents, settled, collect, SECRET, TOKEN } from "./harness.mjs";

let worker;
before(async () => (worker = await startWorker()));
after(async () => worker?.stop());

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");
const form = (fields) => new URLSearchParams(fields).toString();
const basic = (user, password = "") => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const FORM = { "content-type": "application/x-www-form-urlencoded" };
const post = (path, body, headers = {}) => fetch(`${worker.base}${path}`, { method: "POST", headers, body });
const uid = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
const rowsOf = async (id) => (await exportEvents(worker.base)).filter((e) => e.distinct_id === id);
async function get(path) {
  const r = await fetch(`${worker.base}${path}`, { headers: { "x-api-key": SECRET } });
  return r.status === 200 ? r.json() : null;
}
async function until(read, predicate, what) {
  const deadline = Date.now() + 15_000;
  let value;
  while (Date.now() < deadline) {
    value = await read();
    if (predicate(value)) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} never matched: ${JSON.stringify(value)}`);
}
const profile = (id) => until(() => get(`/api/profile?distinct_id=${id}`), Boolean, `profile ${id}`);
const group = (key, id, predicate = Boolean) =>
  until(() => get(`/api/group?group_key=${key}&group_id=${encodeURIComponent(id)}`), (g) => g && predicate(g.properties), `group ${id}`);
const identity = (id, canonical) =>
  until(() => get(`/api/identity?distinct_id=${id}`), (i) => i?.canonical_id === canonical, `identity of ${id}`);

/** Ruby's Consumer#send!: success is HTTP 200 and a JSON body whose
 *  `status` is 1 (it posts `verbose=1`). */
async function rubyAccepts(r) {
  const text = await r.text();
  return r.status === 200 && JSON.parse(text).status === 1;
}
/** Java's sendData and PHP's consumers: the body must be `1`. */
const bodyIsOne = async (r) => (await r.text()).trim() === "1";
/** Go's people, group and identity calls: HTTP 200, a JSON number, not 0. */
async function goPeopleAccepts(r) {
  const text = await r.text();
  return r.status === 200 && JSON.parse(text) !== 0;
}

describe("Ruby mixpanel-ruby", () => {
  // Every call: POST, form `data=<base64 JSON>&verbose=1`, times in ms, no $insert_id.
  test("track, people, groups, alias and a BufferedConsumer batch", async () => {
    const user = uid("rb");
    const event = (name) => ({ event: name, properties: { distinct_id: user, token: TOKEN, time: Date.now(), mp_lib: "ruby", $lib_version: "3.0.0" } });
    assert.ok(await rubyAccepts(await post("/track", form({ data: b64(event("Ruby Track")), verbose: 1 }), FORM)));
    // BufferedConsumer sends the buffered `data` values as one array.
    assert.ok(await rubyAccepts(await post("/track", form({ data: b64([event("Ruby Batch"), event("Ruby Batch")]), verbose: 1 }), FORM)));
    const update = { $token: TOKEN, $time: Date.now(), $distinct_id: user, $set: { plan: "gold" }, $ip: "0" };
    assert.ok(await rubyAccepts(await post("/engage", form({ data: b64(update), verbose: 1 }), FORM)));
    const company = uid("RbCo");
    const groupUpdate = { $token: TOKEN, $time: Date.now(), $group_key: "company", $group_id: company, $set: { tier: 1 } };
    assert.ok(await rubyAccepts(await post("/groups", form({ data: b64(groupUpdate), verbose: 1 }), FORM)));
    // Tracker#alias(alias_id, real_id, events_endpoint) posts to the given endpoint.
    const alias = uid("rb-alias");
    const aliasEvent = { event: "$create_alias", properties: { distinct_id: user, alias, token: TOKEN } };
    assert.ok(await rubyAccepts(await post("/track", form({ data: b64(aliasEvent), verbose: 1 }), FORM)));
    await waitForEvents(worker.base, (e) => e.filter((x) => x.distinct_id === user).length === 4);
    assert.deepEqual((await rowsOf(user)).map((e) => e.event).sort(), ["$create_alias", "Ruby Batch", "Ruby Batch", "Ruby Track"]);
    assert.equal((await profile(user)).properties.plan, "gold");
    await group("company", company, (p) => p.tier === 1);
    await identity(alias, user);
  });

  test("import with service-account credentials; the legacy api_key form field is not a credential here", async () => {
    const user = uid("rb-imp");
    const event = { event: "Ruby Import", properties: { distinct_id: user, token: TOKEN, time: Date.now() - 86_400_000 } };
    // import_events: Basic username:secret and project_id in the query.
    const sa = await post("/import?project_id=demo", form({ data: b64(event), verbose: 1 }), { ...FORM, authorization: basic("svc-ruby", SECRET) });
    assert.ok(await rubyAccepts(sa));
    // import(api_key, …): `api_key` in the form, no Authorization header.
    const legacy = await post("/import", form({ data: b64({ ...event, event: "Ruby Legacy" }), verbose: 1, api_key: SECRET }), FORM);
    assert.equal(await rubyAccepts(legacy), false, "Ruby raises ServerError: nothing was stored");
    await waitForEvents(worker.base, (e) => e.some((x) => x.distinct_id === user));
    await settled(worker);
    assert.deepEqual((await rowsOf(user)).map((e) => e.event), ["Ruby Import"]);
  });
});

describe("Go mixpanel-go", () => {
  test("Track: POST /track?verbose=1 with a JSON array; past 50 events the library reports the 413", async () => {
    const user = uid("go");
    const event = (i) => ({ event: "Go Track", properties: { token: TOKEN, distinct_id: user, mp_lib: "go", time: Date.now() - i } });
    const ok = await post("/track?verbose=1", JSON.stringify([event(1), event(2)]), { "content-type": "application/json", accept: "text/plain" });
    // parseVerboseApiError: an error only when `status` is 0.
    assert.deepEqual(await ok.json(), { status: 1, error: null });
    const big = await post("/track?verbose=1", JSON.stringify(Array.from({ length: 51 }, (_, i) => event(i))), { "content-type": "application/json" });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).status, 0, "Go returns the error; none of the 51 is stored");
    await waitForEvents(worker.base, (e) => e.filter((x) => x.distinct_id === user).length === 2);
    await settled(worker);
    assert.equal((await rowsOf(user)).length, 2);
  });

  test("Import: JSON (gzip) with strict and verbose, by API secret and by service account; failures as ImportFailedValidationError", async () => {
    const user = uid("go-imp");
    const event = (id, time = Date.now() - 86_400_000) => ({ event: "Go Import", properties: { token: TOKEN, distinct_id: user, time, $insert_id: id } });
    const json = { "content-type": "application/json", accept: "application/json", "content-encoding": "gzip" };
    const bySecret = await post("/import?strict=1&verbose=1", gzipSync(JSON.stringify([event("go-1")])), { ...json, authorization: basic(SECRET) });
    assert.equal(bySecret.status, 200);
    assert.deepEqual(await bySecret.json(), { code: 200, num_records_imported: 1, status: 1, error: null });
    const bySa = await post("/import?strict=0&project_id=demo&verbose=1", gzipSync(JSON.stringify([event("go-2")])), { ...json, authorization: basic("svc-go", SECRET) });
    assert.equal((await bySa.json()).num_records_imported, 1);
    // A bad time: 400, decoded into ImportFailedValidationError.
    const bad = await post("/import?strict=1&verbose=1", gzipSync(JSON.stringify([event("go-3", "soon")])), { ...json, authorization: basic(SECRET) });
    assert.equal(bad.status, 400);
    const failed = await bad.json();
    assert.equal(failed.num_records_imported, 0);
    assert.equal(failed.failed_records[0].message, "'properties.time' is invalid: must be specified as seconds since epoch");
    // Without a secret the library authenticates with the token, which
    // never opens /import here (401/403 decode as ImportGenericError).
    const byToken = await post("/import?strict=1&verbose=1", JSON.stringify([event("go-4")]), { "content-type": "application/json", authorization: basic(TOKEN) });
    assert.equal(byToken.status, 403);
    assert.equal(typeof (await byToken.json()).error, "string");
    await waitForEvents(worker.base, (e) => e.filter((x) => x.distinct_id === user).length === 2);
    await settled(worker);
    assert.deepEqual((await rowsOf(user)).map((e) => e.insert_id).sort(), ["go-1", "go-2"]);
  });

  test("people, groups, Alias and Merge: JSON or form posts answered with a JSON number", async () => {
    const user = uid("go-p");
    const other = uid("go-q");
    const people = [{ $token: TOKEN, $distinct_id: user, $set: { plan: "pro" }, $ip: "0" }];
    assert.ok(await goPeopleAccepts(await post("/engage#profile-set", JSON.stringify(people), { "content-type": "application/json", accept: "text/plain" })));
    const company = uid("GoCo");
    const groups = [{ $token: TOKEN, $group_key: "company", $group_id: company, $set: { size: 5 } }];
    assert.ok(await goPeopleAccepts(await post("/groups#group-set", JSON.stringify(groups), { "content-type": "application/json" })));
    // Alias: form `data=<raw JSON>` to /track.
    const alias = { event: "$create_alias", properties: { distinct_id: user, alias: uid("go-alias"), token: TOKEN } };
    assert.ok(await goPeopleAccepts(await post("/track#identity-create-alias", form({ data: JSON.stringify(alias) }), FORM)));
    // Merge: form `data=<raw JSON>` to /import with the API secret.
    const merge = { event: "$merge", properties: { $distinct_ids: [user, other] } };
    assert.ok(await goPeopleAccepts(await post("/import", form({ data: JSON.stringify(merge) }), { ...FORM, authorization: basic(SECRET) })));
    // Deleting: `$delete: "null"` and `$ignore_alias: "false"`.
    await profile(user);
    const del = [{ $token: TOKEN, $distinct_id: user, $delete: "null", $ignore_alias: "false" }];
    assert.ok(await goPeopleAccepts(await post("/engage#profile-delete", JSON.stringify(del), { "content-type": "application/json" })));
    await group("company", company, (p) => p.size === 5);
    await identity(other, user);
    await identity(alias.properties.alias, user);
    await until(() => get(`/api/profile?distinct_id=${user}`), (p) => p === null, "deleted profile");
  });

  test("Export: GET /api/2.0/export with Basic, the API secret or a service account and project_id", async () => {
    const user = uid("go-exp");
    assert.equal((await collect(worker.base, [{ n: "Go Export", i: uid("gx"), id: user, d: "d-gx", ts: Date.now() }])).status, 202);
    await waitForEvents(worker.base, (e) => e.some((x) => x.distinct_id === user));
    const day = new Date().toISOString().slice(0, 10);
    for (const auth of [basic(SECRET), basic("svc-go", SECRET)]) {
      const r = await fetch(`${worker.base}/api/2.0/export?from_date=${day}&to_date=${day}&project_id=demo`, { headers: { authorization: auth, accept: "text/plain" } });
      assert.equal(r.status, 200);
      const lines = (await r.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
      assert.ok(lines.some((l) => l.event === "Go Export" && l.properties.distinct_id === user));
    }
    const wrongProject = await fetch(`${worker.base}/api/2.0/export?from_date=${day}&to_date=${day}&project_id=other`, { headers: { authorization: basic("svc-go", SECRET) } });
    assert.equal(wrongProject.status, 401);
  });
});

describe("Java mixpanel-java", () => {
  // ClientDelivery: POST <endpoint>?ip=0|1, form `data=<urlencoded base64>`,
  // optionally the whole form gzipped; accepted only when the body is `1`.
  test("events, people and groups, plain and gzipped; import with the token is refused", async () => {
    const user = uid("java");
    const company = uid("JavaCo");
    const events = [{ event: "Java Track", properties: { token: TOKEN, time: Date.now(), mp_lib: "jdk", distinct_id: user } }];
    const people = [{ $token: TOKEN, $distinct_id: user, $time: Date.now(), $set: { lang: "java" } }];
    const groups = [{ $token: TOKEN, $group_key: "company", $group_id: company, $set: { lang: "java" } }];
    const body = (value) => `data=${encodeURIComponent(b64(value))}`;
    const type = { "content-type": "application/x-www-form-urlencoded;charset=utf8" };
    assert.ok(await bodyIsOne(await post("/track?ip=0", body(events), type)));
    assert.ok(await bodyIsOne(await post("/track?ip=0", gzipSync(body(events)), { ...type, "content-encoding": "gzip" })));
    assert.ok(await bodyIsOne(await post("/engage?ip=0", body(people), type)));
    assert.ok(await bodyIsOne(await post("/groups?ip=1", gzipSync(body(groups)), { ...type, "content-encoding": "gzip" })));
    // importEvent: JSON to /import?strict=1 with Basic `<token>:`. The token
    // opens only the tracking side here, so the library reads `false`.
    const imported = [{ event: "Java Import", properties: { token: TOKEN, time: Date.now() - 86_400_000, distinct_id: user, $insert_id: uid("ji") } }];
    const refused = await post("/import?strict=1", JSON.stringify(imported), { "content-type": "application/json", authorization: basic(TOKEN) });
    assert.equal(refused.status, 403);
    assert.equal(await bodyIsOne(refused), false);
    // With the secret instead, the JSON answer reads as accepted (status "OK", code 200).
    const accepted = await (await post("/import?strict=1", JSON.stringify(imported), { "content-type": "application/json", authorization: basic(SECRET) })).json();
    assert.deepEqual([accepted.status, accepted.code], ["OK", 200]);
    await waitForEvents(worker.base, (e) => e.filter((x) => x.distinct_id === user).length === 3);
    assert.deepEqual((await rowsOf(user)).map((e) => e.event).sort(), ["Java Import", "Java Track", "Java Track"]);
    assert.equal((await profile(user)).properties.lang, "java");
    await group("company", company, (p) => p.lang === "java");
  });
});

describe("PHP mixpanel-php", () => {
  // CurlConsumer and SocketConsumer: POST form `data=<base64 JSON array>` to
  // /track, /engage or /groups; success is the body `1`.
  test("track, identify, createAlias, people and groups", async () => {
    const user = uid("php");
    const anon = uid("$device:php");
    const send = (path, messages) => post(path, `data=${b64(messages)}`, FORM);
    const time = Date.now() / 1000;
    assert.ok(await bodyIsOne(await send("/track", [{ event: "PHP Track", properties: { mp_lib: "php", token: TOKEN, time, distinct_id: anon } }])));
    // identify($user_id, $anon_id) tracks $identify with $identified_id and $anon_id.
    assert.ok(await bodyIsOne(await send("/track", [{ event: "$identify", properties: { mp_lib: "php", token: TOKEN, time, distinct_id: user, $identified_id: user, $anon_id: anon } }])));
    const alias = uid("php-alias");
    assert.ok(await bodyIsOne(await send("/track", [{ event: "$create_alias", properties: { distinct_id: user, alias, token: TOKEN } }])));
    const people = [{ $token: TOKEN, $distinct_id: user, $time: time, $set: { lang: "php" }, $ignore_time: true }];
    assert.ok(await bodyIsOne(await send("/engage", people)));
    const company = uid("PhpCo");
    assert.ok(await bodyIsOne(await send("/groups", [{ $token: TOKEN, $group_key: "company", $group_id: company, $union: { langs: ["php"] } }])));
    await identity(anon, user);
    await identity(alias, user);
    const props = (await profile(user)).properties;
    assert.equal(props.lang, "php");
    assert.equal(props.$last_seen, undefined, "$ignore_time: no $last_seen");
    await group("company", company, (p) => p.langs?.[0] === "php");
  });
});
