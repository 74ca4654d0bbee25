// Browser half of the backend test (backend_test.go): a page on the
// gateway's origin fetches a ticket from a backend (Node or Go), opens an
// EventSource with it, and must receive exactly what the backend publishes,
// with the ids the backend's publishes returned. The ticket then works no
// more. Any failed check exits non-zero; success prints PASS.

import { deepStrictEqual, equal } from "node:assert/strict";
import { env, launch, log, run } from "./lib.mjs";

const pageURL = env("SSEGATE_PAGE"); // a page on the gateway's origin
const backend = env("SSEGATE_BACKEND");
const chromiumPath = env("CHROMIUM_PATH");
const channel = env("SSEGATE_CHANNEL", "user.alice");
const waitMs = Number(env("SSEGATE_WAIT_MS", "10000"));
const nonce = `${process.pid}-${Date.now().toString(36)}`;
async function publish(event, data) {
  const r = await fetch(`${backend}/publish`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ channel, event, data }),
    signal: AbortSignal.timeout(waitMs),
  });
  const body = await r.json();
  equal(r.status, 200, `backend publish: ${JSON.stringify(body)}`);
  return body.seq;
}

// connect runs in the page: the backend's ticket, then the EventSource.
async function connect({ backend, channel, waitMs }) {
  const r = await fetch(`${backend}/ticket`);
  if (!r.ok) throw new Error(`ticket: ${r.status} ${await r.text()}`);
  const { ticket } = await r.json();
  window.got = [];
  const q = new URLSearchParams({ channel, ticket });
  const es = new EventSource(`/events?${q}`);
  const keep = (e) => window.got.push({ type: e.type, id: e.lastEventId, data: e.data });
  es.onmessage = keep;
  es.addEventListener("update", keep);
  await new Promise((resolve, reject) => {
    es.onopen = resolve;
    es.onerror = () => reject(new Error(`EventSource error, readyState ${es.readyState}`));
    setTimeout(() => reject(new Error("EventSource did not open")), waitMs);
  });
  return ticket;
}

async function main() {
  const browser = await launch(chromiumPath, waitMs);
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(waitMs);
    const pageErrors = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.goto(pageURL);
    const ticket = await page.evaluate(connect, { backend, channel, waitMs });
    log(`EventSource open on ${channel} with a ticket from ${backend}`);

    const sent = [
      { type: "update", data: `first ${nonce}` },
      { type: "message", data: `two\nlines ${nonce}` },
      { type: "update", data: `{"n":3,"s":"✓"} ${nonce}` },
    ];
    const want = [];
    for (const { type, data } of sent) {
      const seq = await publish(type === "message" ? "" : type, data);
      want.push({ type, data, seq });
    }
    await page.waitForFunction((n) => window.got.length >= n, want.length);
    const got = await page.evaluate(() => window.got);
    const epoch = got[0].id.split("-")[1] ?? "";
    deepStrictEqual(got, want.map(({ type, data, seq }) => ({ type, data, id: `${seq}-${epoch}` })), "events received");
    log(`${got.length} events received with the backend's sequences as ids`);

    // A ticket is good for one connection.
    const again = await page.evaluate(async ({ channel, ticket }) => {
      const r = await fetch(`/events?${new URLSearchParams({ channel, ticket })}`);
      return { status: r.status, body: await r.json() };
    }, { channel, ticket });
    deepStrictEqual({ status: again.status, error: again.body.error }, { status: 401, error: "ticket_used" }, "ticket used twice");
    deepStrictEqual(pageErrors, [], "errors on the page");
    console.log("PASS");
  } finally {
    await browser.close();
  }
}

run("eventsource.mjs", main, 6 * waitMs);
