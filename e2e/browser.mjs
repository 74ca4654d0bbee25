// Browser half of the end-to-end test. browser_test.go builds the gateway,
// starts it and runs this script once per case; it is not meant to be run
// by hand, but can be, against a running gateway:
//
//   SSEGATE_URL=http://127.0.0.1:8080/ SSEGATE_PUBLISH=/path/to/publish \
//   SSEGATE_NATS=nats://127.0.0.1:4222 SSEGATE_PROTOCOL=http/1.1 \
//   SSEGATE_SCREENSHOT_DIR=testdata-out SSEGATE_CASE=manual node browser.mjs
//
// It opens the demo page in Chromium, publishes events with the repo's
// publisher (cmd/publish) and checks what the page's EventSource received:
// window.ssegateEvents, the list in the DOM, the stored position, resuming
// after a reload and after the page was away, and the reset event for a
// position the gateway cannot honour. Any failed check exits non-zero.

import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { deepStrictEqual, equal, match } from "node:assert/strict";
import { env, launch, log, run } from "./lib.mjs";

const pageURL = env("SSEGATE_URL");
const publishBin = env("SSEGATE_PUBLISH");
const natsURL = env("SSEGATE_NATS");
const wantProtocol = env("SSEGATE_PROTOCOL"); // "http/1.1" or "h2"
const caseName = env("SSEGATE_CASE");
const outDir = env("SSEGATE_SCREENSHOT_DIR");
const chromiumPath = env("CHROMIUM_PATH");
const waitMs = Number(env("SSEGATE_WAIT_MS", "10000"));
const channel = new URL(pageURL).searchParams.get("channel") || "demo";
const storageKey = "ssegate-last-id:" + channel;
// Makes this run's data unique, so nothing from another run or case can
// pass for an event this one published.
const nonce = `${caseName}-${process.pid}-${Date.now().toString(36)}`;

// publish sends one event with cmd/publish and returns its stream sequence.
function publish(data, event) {
  const args = ["-server", natsURL, "-channel", channel];
  if (event) args.push("-event", event);
  args.push(data);
  return new Promise((resolve, reject) => {
    execFile(publishBin, args, { timeout: waitMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`publish ${JSON.stringify(args)}: ${err.message}\n${stderr}`));
      const m = /sequence (\d+)/.exec(stdout);
      if (!m) return reject(new Error(`publish: no sequence in output ${JSON.stringify(stdout)}`));
      resolve(Number(m[1]));
    });
  });
}

// publishAll publishes events in order and returns what the page should
// receive for them; the id's epoch is filled in by expectIDs.
async function publishAll(events) {
  const out = [];
  for (const { type, data } of events) {
    const seq = await publish(data, type === "message" ? "" : type);
    out.push({ type, data, seq });
  }
  return out;
}

let epoch = ""; // learnt from the first event id the page receives
const withIDs = (events) => events.map(({ type, data, seq }) => ({ type, data, id: `${seq}-${epoch}` }));

async function waitOpen(page) {
  await page.waitForFunction(() => document.getElementById("status")?.textContent === "open", null, { timeout: waitMs });
}

async function received(page) {
  return page.evaluate(() => window.ssegateEvents);
}

// waitFor waits until the page holds an event with the sentinel's data,
// then returns everything the page holds. Events arrive in stream order,
// so anything published before the sentinel has arrived by then, and a
// duplicate of it would show up too.
async function waitFor(page, sentinel) {
  try {
    await page.waitForFunction((d) => window.ssegateEvents.some((e) => e.data === d), sentinel, { timeout: waitMs });
  } catch (err) {
    throw new Error(`event ${JSON.stringify(sentinel)} did not reach the page within ${waitMs}ms; page holds ${JSON.stringify(await received(page))}`, { cause: err });
  }
  return received(page);
}

// checkPage compares what the page holds, as data and as list items, with
// what it should hold.
async function checkPage(page, want, what) {
  deepStrictEqual(await received(page), want, `${what}: window.ssegateEvents`);
  const items = await page.locator("#events li").evaluateAll((lis) => lis.map((li) => li.textContent));
  deepStrictEqual(items, want.map((e) => `[${e.type} #${e.id}] ${e.data}`), `${what}: list items`);
  if (want.length > 0) {
    const stored = await page.evaluate((k) => sessionStorage.getItem(k), storageKey);
    equal(stored, want.at(-1).id, `${what}: stored last id`);
  }
  log(`${what}: ${want.length} event(s) as expected`);
}

async function shoot(page, name) {
  const path = join(outDir, `${caseName}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const browser = await launch(chromiumPath, waitMs, ["--disable-quic"]);
  let page;
  try {
    log(`${caseName}: Chromium ${browser.version()}, page ${pageURL}, channel ${channel}`);
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 640 } });
    context.setDefaultTimeout(waitMs);
    page = await context.newPage();
    const pageErrors = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (m) => {
      // The demo has no favicon; Chromium asks for one anyway.
      if (m.type() === "error" && !m.location().url.endsWith("/favicon.ico")) {
        pageErrors.push(`console: ${m.text()} (${m.location().url})`);
      }
    });

    // The EventSource responses as the network stack saw them.
    const streams = [];
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    cdp.on("Network.responseReceived", ({ type, response: r }) => {
      if (type === "EventSource") {
        streams.push({ url: r.url, status: r.status, protocol: r.protocol, mime: r.mimeType });
      }
    });

    // 1. Live: the page connects and shows what is published.
    await page.goto(pageURL);
    await waitOpen(page);
    const proto = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    equal(proto, wantProtocol, "page load protocol");
    equal(await page.evaluate(() => window.ssegateEvents.length), 0, "events before any publish");
    const live = await publishAll([
      { type: "greeting", data: `hello 1 ${nonce}` },
      { type: "update", data: `line one\nline two ${nonce}` },
      { type: "message", data: `plain ✓ 3 ${nonce}` },
      { type: "greeting", data: `hello 4 ${nonce}` },
    ]);
    const got = await waitFor(page, live.at(-1).data);
    match(got[0]?.id ?? "", /^\d+-[a-z2-7]{4}$/, "event id format <seq>-<epoch>");
    epoch = got[0].id.split("-")[1];
    await checkPage(page, withIDs(live), "live");
    await shoot(page, "1-live");

    // 2. Reload: the page resumes from its stored id; nothing is repeated.
    await page.reload();
    await waitOpen(page);
    const reloaded = await publishAll([{ type: "update", data: `after reload ${nonce}` }]);
    await waitFor(page, reloaded.at(-1).data);
    await checkPage(page, withIDs(reloaded), "after reload");

    // 3. Away: what was published while the page was gone is replayed on
    // return, exactly once, in order, followed by live events.
    await page.goto("about:blank");
    const away = await publishAll([
      { type: "greeting", data: `while away 1 ${nonce}` },
      { type: "message", data: `while away 2 ${nonce}` },
      { type: "update", data: `while away 3 ${nonce}` },
    ]);
    await page.goto(pageURL);
    await waitOpen(page);
    await waitFor(page, away.at(-1).data);
    const back = await publishAll([{ type: "greeting", data: `back ${nonce}` }]);
    await waitFor(page, back.at(-1).data);
    await checkPage(page, withIDs([...away, ...back]), "resumed after being away");
    await shoot(page, "2-resumed");

    // 4. A position the gateway cannot honour gets a reset event whose id
    // is the current end of the stream, then live events.
    await page.evaluate((k) => sessionStorage.setItem(k, "bogus"), storageKey);
    await page.reload();
    await waitOpen(page);
    const after = await publishAll([{ type: "message", data: `after reset ${nonce}` }]);
    await waitFor(page, after.at(-1).data);
    const reset = { type: "reset", data: '{"reason":"malformed"}', id: withIDs(back)[0].id };
    await checkPage(page, [reset, ...withIDs(after)], "reset for a bad stored id");

    // Every EventSource response: 200, text/event-stream, over the protocol
    // this case is about (HTTP/1.1 or HTTP/2).
    equal(streams.length, 4, `EventSource responses seen: ${JSON.stringify(streams)}`);
    for (const s of streams) {
      deepStrictEqual({ status: s.status, mime: s.mime, protocol: s.protocol }, { status: 200, mime: "text/event-stream", protocol: wantProtocol }, `EventSource response ${s.url}`);
    }
    log(`${streams.length} EventSource responses: 200 text/event-stream over ${wantProtocol}`);
    deepStrictEqual(pageErrors, [], "errors on the page");
    console.log("PASS");
  } catch (err) {
    if (page && !page.isClosed()) await shoot(page, "failure").catch(() => {});
    throw err;
  } finally {
    await browser.close();
  }
}

run("browser.mjs", main, 12 * waitMs);
