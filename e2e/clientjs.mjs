// Browser half of TestClientJSInChromium (clientjs_test.go in the root):
// a page imports the gateway's client.js and must get every event exactly
// once across a first ticket that is refused, tickets that expire
// mid-stream, a gateway restart, a page reload and a reset; and behind a
// buffering proxy it must fall back to long-polling and say so. The Go
// test serves the page, the tickets and the control endpoints (/ctl/...).
// Any failed check exits non-zero; success prints PASS.

import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is required`);
  return v;
};
const front = env("SSEGATE_FRONT"); // streams pass at once
const buffered = env("SSEGATE_BUFFERED"); // streams are held back
const waitMs = 15000;
const log = (...a) => console.log("#", ...a);

async function ctl(base, action, params = {}) {
  const r = await fetch(`${base}/ctl/${action}?${new URLSearchParams(params)}`, { method: "POST", signal: AbortSignal.timeout(60000) });
  const body = await r.text();
  equal(r.status, 200, `${action}: ${body}`);
  return body;
}

const publish = async (base, data) => Number(await ctl(base, "publish", { data }));

// received are the data events the page logged, as [seq, data].
async function received(page) {
  return page.evaluate(() => window.got.filter((e) => e.type === "update").map((e) => [Number(e.id.split("-")[0]), e.data]));
}

async function waitFor(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: waitMs, polling: 50 });
  } catch (err) {
    const got = await page.evaluate(() => window.got);
    throw new Error(`waiting for ${what}: ${err.message}\npage log: ${JSON.stringify(got)}`);
  }
}

// expect waits until the page holds exactly the published events, in order.
async function expect(page, sent, what) {
  await waitFor(page, what, (n) => window.got.filter((e) => e.type === "update").length >= n, sent.length);
  deepStrictEqual(await received(page), sent, what);
  log(`${what}: ${sent.length} events, each once`);
}

async function streaming(browser) {
  const page = await browser.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(`${front}/?bad_first_ticket=1`);
  const sent = [];
  await waitFor(page, "the stream to open after a refused ticket", () => window.got.some((e) => e.type === "open"));
  const refused = await page.evaluate(() => window.got.filter((e) => e.type === "error").map((e) => e.status));
  deepStrictEqual(refused, [401], "the refused first ticket");
  for (const d of ["a", "b", "c"]) sent.push([await publish(front, d), d]);
  await expect(page, sent, "first events");

  // Tickets live 2 s: the stream ends with its ticket, and the client
  // comes back with a new one.
  const tickets = await page.evaluate(() => window.tickets());
  await waitFor(page, "a new ticket after expiry", (n) => window.tickets() >= n + 1 && window.got.filter((e) => e.type === "open").length >= 2, tickets);
  for (const d of ["d", "e"]) sent.push([await publish(front, d), d]);
  await expect(page, sent, "after the ticket expired mid-stream");

  // The gateway restarts; what is published meanwhile arrives once.
  for (const line of (await ctl(front, "restart")).trim().split("\n")) {
    const [seq, d] = line.split(" ");
    sent.push([Number(seq), d]);
  }
  sent.push([await publish(front, "after restart"), "after restart"]);
  await expect(page, sent, "across a gateway restart");

  // A reload resumes from the id kept in localStorage.
  await page.goto("about:blank");
  const during = [];
  for (const d of ["r1", "r2"]) during.push([await publish(front, d), d]);
  await page.goto(`${front}/`);
  during.push([await publish(front, "r3"), "r3"]);
  await expect(page, during, "across a page reload");

  // A position that cannot be honoured raises reset, then goes live.
  await page.evaluate(() => localStorage.setItem(window.feed.storageKey, "garbage"));
  await page.reload();
  await waitFor(page, "reset", () => window.got.some((e) => e.type === "reset"));
  const reset = await page.evaluate(() => window.got.find((e) => e.type === "reset"));
  equal(reset.reason, "malformed");
  await waitFor(page, "open after reset", () => window.got.some((e) => e.type === "open"));
  const after = [[await publish(front, "after reset"), "after reset"]];
  await expect(page, after, "after a reset");
  await page.close();
}

async function bufferedProxy(browser) {
  const page = await browser.newPage();
  await page.goto(`${buffered}/?fallback=2000&stream_retry=3000`);
  await waitFor(page, "the fallback", () => window.got.some((e) => e.type === "fallback"));
  const fb = await page.evaluate(() => window.got.find((e) => e.type === "fallback"));
  ok(/long-polling/.test(fb.reason), fb.reason);
  ok(/trying the stream again in 3 s/.test(fb.reason), fb.reason);
  await waitFor(page, "the first poll", () => window.got.some((e) => e.type === "open" && e.transport === "poll"));
  const sent = [];
  for (const d of ["p1", "p2", "p3"]) sent.push([await publish(buffered, d), d]);
  await expect(page, sent, "long-polling behind a buffering proxy");
  equal(await page.evaluate(() => window.feed.transport), "poll");

  // Later it tries the stream again, says so, and falls back again while
  // the proxy still buffers, waiting twice as long before the next try.
  await waitFor(page, "a second fallback after a stream try", () => window.got.filter((e) => e.type === "fallback").length >= 2);
  const tries = await page.evaluate(() => window.got.filter((e) => e.type === "stream-retry"));
  ok(tries.length >= 1 && /trying the stream again/.test(tries[0].reason), JSON.stringify(tries));
  const retryIn = await page.evaluate(() => window.got.filter((e) => e.type === "fallback").map((e) => e.retryIn));
  deepStrictEqual(retryIn.slice(0, 2), [3000, 6000], "the stream is tried again with backoff");
  sent.push([await publish(buffered, "p4"), "p4"]);
  await expect(page, sent, "long-polling again after a stream try");

  // The proxy stops buffering: the next try streams, and stays.
  await ctl(buffered, "unbuffer");
  await waitFor(page, "the stream after the proxy stopped buffering", () => window.got.some((e) => e.type === "open" && e.transport === "stream"));
  for (const d of ["p5", "p6"]) sent.push([await publish(buffered, d), d]);
  await expect(page, sent, "streaming again after long-polling");
  equal(await page.evaluate(() => window.feed.transport), "stream");
  await page.close();
}

// rawApis uses the endpoints with the browser's own EventSource and fetch:
// history's last_id opens a filtered stream exactly after it, since=
// starts a stream at a stored time, and a fetch poll loop gets the rest.
async function rawApis(browser) {
  const page = await browser.newPage();
  await page.goto(`${front}/blank`);
  const older = [];
  for (const d of ["h1", "h2", "h3"]) older.push([await publish(front, d), d]);
  const hist = await page.evaluate(async () => {
    const ticket = async () => (await (await fetch("/ticket", { method: "POST" })).json()).ticket;
    const q = new URLSearchParams({ channel: "user.alice", last: "3", ticket: await ticket() });
    const a = await (await fetch("/events/history?" + q)).json();
    window.got = [];
    const es = new EventSource("/events?" + new URLSearchParams({ channel: "user.alice", event: "update", last_event_id: a.last_id, ticket: await ticket() }));
    es.addEventListener("update", (e) => window.got.push({ type: "update", id: e.lastEventId, data: e.data }));
    es.addEventListener("other", (e) => window.got.push({ type: "other", id: e.lastEventId, data: e.data }));
    await new Promise((r) => (es.onopen = r));
    window.es = es;
    return a;
  });
  deepStrictEqual(hist.events.map((e) => [Number(e.id.split("-")[0]), e.data]), older, "history last=3 by fetch");
  const live = [];
  for (const [ev, d] of [["update", "s1"], ["other", "skip"], ["update", "s2"]]) {
    const seq = Number(await ctl(front, "publish", { data: d, event: ev }));
    if (ev === "update") live.push([seq, d]);
  }
  await expect(page, live, "EventSource from history's last_id, filtered to update");
  equal(await page.evaluate(() => window.got.filter((e) => e.type === "other").length), 0, "the filtered event");

  // since= the time of h2: h2, h3, s1, s2 (the filter keeps out "skip").
  const since = hist.events[1].time;
  await page.evaluate(async (since) => {
    window.es.close();
    window.got = [];
    const t = (await (await fetch("/ticket", { method: "POST" })).json()).ticket;
    const es = new EventSource("/events?" + new URLSearchParams({ channel: "user.alice", event: "update", since, ticket: t }));
    es.addEventListener("update", (e) => window.got.push({ type: "update", id: e.lastEventId, data: e.data }));
    window.es = es;
  }, since);
  await expect(page, [...older.slice(1), ...live], "EventSource with since=");

  // A fetch poll loop from h3 gets s1 and s2, then what comes next.
  const after = hist.events[2].id;
  const polled = await page.evaluate(async (after) => {
    window.es.close();
    const out = [];
    for (let i = 0; i < 10 && out.length < 3; i++) {
      const t = (await (await fetch("/ticket", { method: "POST" })).json()).ticket;
      const a = await (await fetch("/events/poll?" + new URLSearchParams({ channel: "user.alice", event: "update", after, wait: "5s", ticket: t }))).json();
      for (const e of a.events) out.push([Number(e.id.split("-")[0]), e.data]);
      after = a.last_id;
      if (out.length === 2) fetch("/ctl/publish?data=p-next", { method: "POST" });
    }
    return out;
  }, after);
  equal(polled.length, 3, `poll loop: ${JSON.stringify(polled)}`);
  deepStrictEqual(polled.slice(0, 2), live, "fetch poll loop after history");
  equal(polled[2][1], "p-next");
  log("history, filtered EventSource, since= and a fetch poll loop: each event once");
  await page.close();
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM_PATH"),
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  timeout: 30000,
});
try {
  await rawApis(browser);
  await streaming(browser);
  await bufferedProxy(browser);
  console.log("PASS");
} finally {
  await browser.close();
}
