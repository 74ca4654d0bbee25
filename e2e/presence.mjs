// Browser half of TestPresenceEventsInBrowser: a page's EventSource on a
// channel with presence_events gets join and leave events, with ids, for
// a user whose stream this script opens and closes; and, resuming from
// its last id after being away, the join and leave it missed.

import { equal, ok } from "node:assert/strict";
import { env, launch, log, run } from "./lib.mjs";

const base = env("SSEGATE_URL");
const token = env("SSEGATE_TOKEN");
const chromiumPath = env("CHROMIUM_PATH");
const waitMs = 10000;

// userStream opens alice's stream from node and returns what closes it.
async function userStream() {
  const ac = new AbortController();
  const resp = await fetch(`${base}/events?channel=demo`, {
    headers: { Authorization: `Bearer ${token}` },
    signal: ac.signal,
  });
  equal(resp.status, 200);
  const reader = resp.body.getReader();
  (async () => {
    try {
      for (;;) if ((await reader.read()).done) return;
    } catch {}
  })();
  return () => ac.abort();
}

async function waitFor(page, what, fn, arg) {
  try {
      await page.waitForFunction(fn, arg, { timeout: 10000, polling: 50 });
    } catch (e) {
      const seen = await page.evaluate(() => JSON.stringify(window.presenceEvents));
      throw new Error(`${what}: not within 10s; the page has ${seen}`);
    }
  }

  async function main() {
    const browser = await launch(chromiumPath, waitMs);
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/page`);
    // The page's own reader is anonymous: it is counted, and never joins.
    await page.evaluate(() => {
      window.presenceEvents = [];
      window.listen = (from) => {
        const q = from ? `&last_event_id=${encodeURIComponent(from)}` : "";
        const es = new EventSource(`/events?channel=demo${q}`);
        for (const type of ["join", "leave"]) {
          es.addEventListener(type, (e) => {
            window.presenceEvents.push({ type, sub: JSON.parse(e.data).sub, id: e.lastEventId });
          });
        }
        window.es = es;
        return new Promise((resolve) => es.addEventListener("open", resolve, { once: true }));
      };
      return window.listen("");
    });
    log("page listening");
    let close = await userStream();
    await waitFor(page, "alice's join", () => window.presenceEvents.some((e) => e.type === "join" && e.sub === "alice"));
    close();
    await waitFor(page, "alice's leave", () => window.presenceEvents.some((e) => e.type === "leave" && e.sub === "alice"));
    const live = await page.evaluate(() => window.presenceEvents);
    equal(live.length, 2, JSON.stringify(live));
    ok(live.every((e) => e.id !== ""), `stored events carry ids: ${JSON.stringify(live)}`);
    log("live join and leave:", JSON.stringify(live));

    // Away while alice comes and goes: the page resumes from its last id
    // and gets both.
    await page.evaluate(() => {
      window.es.close();
      window.presenceEvents = [];
    });
    const from = live[live.length - 1].id;
    close = await userStream();
    await new Promise((r) => setTimeout(r, 500));
    close();
    await new Promise((r) => setTimeout(r, 500));
    await page.evaluate((from) => window.listen(from), from);
    await waitFor(page, "the missed join and leave", () =>
      window.presenceEvents.filter((e) => e.sub === "alice").length >= 2);
    const missed = await page.evaluate(() => window.presenceEvents);
    equal(missed.map((e) => e.type).join(","), "join,leave", JSON.stringify(missed));
    log("resumed with:", JSON.stringify(missed));
    console.log("PASS");
  } finally {
    await browser.close();
  }
}

run("presence.mjs", main, 6 * waitMs);
