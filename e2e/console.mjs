// Browser half of TestConsoleInBrowser (console_test.go), which starts the
// gateway with the console, publish and health endpoints and runs this
// script once. It drives the console page in headless Chromium and checks
// what it shows; any failed check exits non-zero.

import { readFileSync, statSync } from "node:fs";
import { deepStrictEqual, equal, ok, match } from "node:assert/strict";
import { env, launch, log, run } from "./lib.mjs";

const base = env("SSEGATE_BASE");
const token = env("SSEGATE_TOKEN");
const publishKey = env("SSEGATE_PUBLISH_KEY");
const screenshot = env("SSEGATE_SCREENSHOT");
const chromiumPath = env("CHROMIUM_PATH");
const adminURL = env("SSEGATE_ADMIN");
const caddyfile = env("SSEGATE_CADDYFILE");
const waitMs = Number(env("SSEGATE_WAIT_MS", "10000"));
const consoleURL = `${base}/events/console/?channel=demo&channel=orders.eu`;
const nonce = `${process.pid}-${Date.now().toString(36)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// publish sends an event as a backend would: fetch with the publish key.
async function publish(channel, event, data) {
  const url = new URL("/events/publish", base);
  url.searchParams.set("channel", channel);
  url.searchParams.set("event", event);
  const res = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${publishKey}` }, body: data, signal: AbortSignal.timeout(waitMs) });
  const body = await res.json();
  equal(res.status, 201, `publish ${event}: ${JSON.stringify(body)}`);
  return body.id;
}

const events = (page) => page.evaluate(() => window.ssegateConsole.events.map(({ channel, type, id, data }) => ({ channel, type, id, data })));

async function waitEvent(page, data) {
  try {
    await page.waitForFunction((d) => window.ssegateConsole.events.some((e) => e.data === d), data, { timeout: waitMs });
  } catch (err) {
    throw new Error(`event ${JSON.stringify(data)} did not show within ${waitMs}ms; page holds ${JSON.stringify(await events(page))}`, { cause: err });
  }
}

async function connection(page, channel) {
  return page.evaluate((ch) => {
    const cells = [...document.querySelector(`#connections tr[data-channel="${ch}"]`).cells].map((c) => c.textContent);
    const [, state, protocol, reconnects, lastId, , reason] = cells;
    return { state, protocol, reconnects, lastId, reason };
  }, channel);
}

async function waitState(page, channel, state) {
  await page.waitForFunction(([ch, st]) => document.querySelector(`#connections tr[data-channel="${ch}"] td.state-${st}`), [channel, state], { timeout: waitMs });
}

async function main() {
  // Two of the gateway's events are published before the page first opens:
  // it starts from now, so it must not show them.
  await publish("demo", "before", `before the page ${nonce}`);

  const browser = await launch(chromiumPath, waitMs);
  try {
    log(`Chromium ${browser.version()}, console ${consoleURL}`);
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 760 } });
    context.setDefaultTimeout(waitMs);
    const page = await context.newPage();
    const pageErrors = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (m) => {
      // Chromium logs every refused fetch; those refusals are checked below.
      if (m.type() === "error" && !/status of 40[13]/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });

    // 1. From its link, without a token: the public channel opens, the
    // private one is refused, and the page says why.
    await page.goto(consoleURL);
    await waitState(page, "demo", "open");
    await waitState(page, "orders.eu", "refused");
    match((await connection(page, "orders.eu")).reason, /^401 unauthenticated: /, "refusal reason");
    equal(await page.locator("#page-protocol").textContent(), "h2", "page protocol");
    await page.waitForFunction(() => /token/.test(document.getElementById("stat-note").textContent));
    ok(await page.locator("#token-hint").isVisible(), "the line on where a token comes from shows without a token");
    match(await page.locator("#token-hint").textContent(), /go run \.\/cmd\/token -sub me .*SSEGATE_JWT_SECRET.*development\s+secret/s, "token hint");
    // Publishing from the form without a token: the answer says where a
    // publish token comes from.
    await page.fill("#pub-data", `refused ${nonce}`);
    await page.click("#pub-send");
    await page.waitForFunction(() => /^401 /.test(document.getElementById("pub-result").textContent));
    match(await page.locator("#pub-result").textContent(), /^401 unauthenticated: .*\(a publish token, pasted as Token: go run \.\/cmd\/token -sub me -publish demo\)$/, "publish 401 hint");
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-no-token.png"), fullPage: true });
    log("without a token: demo open, orders.eu refused with its reason, figures need a token, hints on where a token comes from");

    // 2. A pasted token opens both, and the figures appear.
    await page.fill("#token", token);
    await page.click("#connect");
    await waitState(page, "demo", "open");
    await waitState(page, "orders.eu", "open");
    equal((await connection(page, "demo")).protocol, "h2", "stream protocol");
    await page.waitForFunction(() => Number(document.getElementById("stat-clients").textContent) >= 2);
    ok(!(await page.locator("#token-hint").isVisible()), "the token hint hides once a token is pasted");
    log("with a token: both open over h2; figures:", (await page.locator("#figures").textContent()).replace(/\s+/g, " ").trim());

    // 3. Events of any name, from the page's form and from a backend.
    await page.fill("#pub-channel", "orders.eu");
    await page.fill("#pub-event", "order.shipped");
    await page.fill("#pub-data", `parcel 1 ${nonce}`);
    await page.fill("#pub-key", `ship-${nonce}`);
    await page.click("#pub-send");
    await page.waitForFunction(() => /^201 stored as \d+-[a-z2-7]{4}$/.test(document.getElementById("pub-result").textContent));
    const formID = (await page.locator("#pub-result").textContent()).split(" ").at(-1);
    await page.click("#pub-send"); // a retry with the same Idempotency-Key
    await page.waitForFunction((id) => document.getElementById("pub-result").textContent === `200 stored as ${id} (a retry: stored before)`, formID);
    const odd = await publish("demo", "any-name.at_all:42", `line one\nline two ${nonce}`);
    await waitEvent(page, `parcel 1 ${nonce}`);
    await waitEvent(page, `line one\nline two ${nonce}`);
    deepStrictEqual(await events(page), [
      { channel: "orders.eu", type: "order.shipped", id: formID, data: `parcel 1 ${nonce}` },
      { channel: "demo", type: "any-name.at_all:42", id: odd, data: `line one\nline two ${nonce}` },
    ], "events shown");
    const rows = await page.locator("#events tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].slice(1).map((c) => c.textContent)));
    deepStrictEqual(rows, [
      ["demo", "any-name.at_all:42", odd, `line one\nline two ${nonce}`],
      ["orders.eu", "order.shipped", formID, `parcel 1 ${nonce}`],
    ], "event rows, newest first");
    equal((await connection(page, "demo")).lastId, odd, "last id shown");
    await page.waitForFunction(() => Number(document.getElementById("stat-rate").textContent) > 0);
    // The chart: events per second, and p50 and p99 of the deliveries
    // between two polls of the figures, so events keep coming until
    // both latency lines have points.
    const chartDeadline = Date.now() + 3 * waitMs;
    let points;
    for (let i = 0; ; i++) {
      points = await page.evaluate(() => ({ ...window.ssegateConsole.chart.points }));
      if (points.rate >= 2 && points.p50 >= 2 && points.p99 >= 2) break;
      ok(Date.now() < chartDeadline, `the chart did not draw: points ${JSON.stringify(points)}`);
      await publish("demo", "tick", `tick ${i} ${nonce}`);
      await sleep(250);
    }
    const drawn = await page.evaluate(() => {
      // Pixels of each line's colour on the canvases: drawn, not only counted.
      const count = (id, rgb) => {
        const c = document.getElementById(id);
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        // The canvas is transparent: an antialiased edge keeps the line's
        // colour with less alpha.
        const near = (i) => [0, 1, 2].every((k) => Math.abs(d[i + k] - rgb[k]) <= 12);
        // Below the labels (11px text at the top, in the lines' colours);
        // the plot starts at 16px.
        const from = 13 * (window.devicePixelRatio || 1) * c.width * 4;
        for (let i = from; i < d.length; i += 4) if (d[i + 3] > 40 && near(i)) n++;
        return n;
      };
      return { rate: count("chart-rate", [0x1a, 0x7f, 0x37]), p50: count("chart-latency", [0x1f, 0x6f, 0xeb]), p99: count("chart-latency", [0xbf, 0x57, 0x00]) };
    });
    await page.screenshot({ path: screenshot, fullPage: true });
    // Two points or more per line, each at least a 2x2 dot.
    ok(drawn.rate > 4 && drawn.p50 > 4 && drawn.p99 > 4, `chart pixels ${JSON.stringify(drawn)}`);
    log("chart points", JSON.stringify(points), "pixels", JSON.stringify(drawn));
    match(await page.locator("#chart-latency").getAttribute("aria-label"), /^now p50 [\d.]+ ms, p99 [\d.]+ ms$/, "latency chart's words");
    match(await page.locator("#chart-rate").getAttribute("aria-label"), /^now [\d.]+\/s$/, "rate chart's words");
    // The quantile estimate, inside a bucket and beyond the last bound.
    const q = await page.evaluate(async () => {
      const { quantile } = await import(new URL("chart.js", location.href));
      return [quantile([1, 2, 4], [0, 10, 10], 10, 0.5), quantile([1, 2, 4], [2, 2, 4], 6, 0.99), quantile([1, 2, 4], [3, 3, 3], 3, 0.5), quantile([1], [0], 0, 0.5)];
    });
    deepStrictEqual(q, [1.5, 4, 0.5, null], "quantiles");
    const size = statSync(screenshot).size;
    ok(size > 20000, `screenshot ${screenshot} is only ${size} bytes`);
    log(`screenshot ${screenshot} (${size} bytes)`);

    // 4. Away and back: what was published meanwhile shows once, nothing
    // before it again, then live events.
    await page.goto("about:blank");
    const away1 = await publish("demo", "away", `while away 1 ${nonce}`);
    const away2 = await publish("orders.eu", "away", `while away 2 ${nonce}`);
    await page.goto(consoleURL);
    await waitEvent(page, `while away 1 ${nonce}`);
    await waitEvent(page, `while away 2 ${nonce}`);
    const back = await publish("demo", "back", `back ${nonce}`);
    await waitEvent(page, `back ${nonce}`);
    const got = await events(page);
    got.sort((a, b) => parseInt(a.id) - parseInt(b.id));
    deepStrictEqual(got, [
      { channel: "demo", type: "away", id: away1, data: `while away 1 ${nonce}` },
      { channel: "orders.eu", type: "away", id: away2, data: `while away 2 ${nonce}` },
      { channel: "demo", type: "back", id: back, data: `back ${nonce}` },
    ], "events after coming back");
    equal((await connection(page, "demo")).reconnects, "0", "a fresh page has not reconnected");
    log("after a reload: the events published while away, once, then live");

    // 5. A ticket per connection instead of the token in a header.
    await page.check("#use-ticket");
    await page.click("#connect");
    await waitState(page, "orders.eu", "open");
    const viaTicket = await publish("orders.eu", "ticketed", `via ticket ${nonce}`);
    await waitEvent(page, `via ticket ${nonce}`);
    equal((await connection(page, "orders.eu")).lastId, viaTicket, "last id via ticket");
    log("ticket mode: open and live");

    // 6. A config reload ends every stream with a reason; the page shows
    // it, comes back after the retry delay (with fresh tickets) and
    // continues from its last ids.
    const before = await page.evaluate(() => window.ssegateConsole.events.length);
    const reload = await fetch(`${adminURL}/load`, {
      method: "POST",
      // The same config: must-revalidate makes Caddy reload it anyway.
      // Node's fetch sends Sec-Fetch-Mode, so Caddy's admin API checks the
      // origin, which must then be its own address.
      headers: { "Content-Type": "text/caddyfile", "Cache-Control": "must-revalidate", Origin: adminURL },
      body: readFileSync(caddyfile),
      signal: AbortSignal.timeout(waitMs),
    });
    equal(reload.status, 200, `reload: ${await reload.text()}`);
    try {
      await page.waitForFunction(() => [...document.querySelectorAll("#connections tbody tr")].every((tr) =>
        tr.cells[1].textContent === "open" && tr.cells[3].textContent === "1" && tr.cells[6].textContent === "ended by the gateway: shutdown"));
    } catch (err) {
      throw new Error(`after the reload: ${JSON.stringify([await connection(page, "demo"), await connection(page, "orders.eu")])}`, { cause: err });
    }
    const afterReload = await publish("demo", "after-reload", `after reload ${nonce}`);
    await waitEvent(page, `after reload ${nonce}`);
    deepStrictEqual((await events(page)).slice(before), [{ channel: "demo", type: "after-reload", id: afterReload, data: `after reload ${nonce}` }], "events after the reload");
    log("config reload: both streams ended with reason shutdown, reconnected once, nothing repeated");

    deepStrictEqual(pageErrors, [], "errors on the page");
    console.log("PASS");
  } finally {
    await browser.close();
  }
}

run("console.mjs", main, 8 * waitMs);
