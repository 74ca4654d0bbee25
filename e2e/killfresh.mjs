// Client half of fault_killfresh_test.go: EventSources on a fresh channel,
// in headless Chromium (SSEGATE_CLIENT=chromium) or with the npm
// eventsource package (SSEGATE_CLIENT=eventsource). It opens them, prints
// OPEN, and records what each receives while the test kills the gateway
// with SIGKILL, starts it again and publishes. The test then writes one
// line to stdin: the number of events it published. The script waits
// until every client has that many (or SSEGATE_WAIT_MS passes) and prints
// RESULT with the ids each client got, in order; the test checks them.

import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { EventSource } from "eventsource";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") throw new Error(`environment variable ${name} is required`);
  return v;
};

const origin = env("SSEGATE_ORIGIN"); // the gateway, http://127.0.0.1:port
const channel = env("SSEGATE_CHANNEL");
const kind = env("SSEGATE_CLIENT");
const clients = Number(env("SSEGATE_CLIENTS", "4"));
const waitMs = Number(env("SSEGATE_WAIT_MS", "20000"));
const log = (...a) => console.log("#", ...a);

// open runs where EventSource is (the page, or node): n sources, each
// keeping the ids of its messages in window.got[i] (globalThis in node).
async function open({ url, n, waitMs }) {
  globalThis.got = [];
  globalThis.sources = [];
  const opened = [];
  for (let i = 0; i < n; i++) {
    const ids = [];
    globalThis.got.push(ids);
    const es = new EventSource(url);
    globalThis.sources.push(es);
    es.onmessage = (e) => ids.push(e.lastEventId);
    opened.push(new Promise((resolve, reject) => {
      es.onopen = resolve;
      setTimeout(() => reject(new Error(`EventSource ${i} did not open`)), waitMs);
    }));
  }
  await Promise.all(opened);
}

async function inChromium(url, run) {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM_PATH"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    timeout: 30000,
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/page`);
    await page.evaluate(open, { url, n: clients, waitMs });
    return await run(() => page.evaluate(() => globalThis.got.map((ids) => ids.slice())));
  } finally {
    await browser.close();
  }
}

async function inNode(url, run) {
  await open({ url, n: clients, waitMs });
  try {
    return await run(async () => globalThis.got);
  } finally {
    for (const es of globalThis.sources) es.close();
  }
}

// run prints OPEN, takes the number of events published from stdin and
// waits until each client has as many, or waitMs.
async function run(got) {
  console.log("OPEN");
  const lines = createInterface({ input: process.stdin });
  const [line] = await lines[Symbol.asyncIterator]().next().then((r) => [r.value]);
  lines.close();
  const want = Number(line);
  const deadline = Date.now() + waitMs;
  let ids = await got();
  while (ids.some((l) => l.length < want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    ids = await got();
  }
  log(`${kind}: ${ids.map((l) => l.length).join(", ")} events of ${want}`);
  return ids;
}

const url = `${origin}/events?channel=${encodeURIComponent(channel)}`;
const main = kind === "chromium" ? inChromium : inNode;
const timer = setTimeout(() => {
  console.error(`killfresh.mjs: no result after ${4 * waitMs}ms`);
  process.exit(2);
}, 4 * waitMs);
main(url, run).then(
  (ids) => {
    console.log("RESULT " + JSON.stringify(ids));
    clearTimeout(timer);
    // The package's sockets and stdin would keep node alive a while.
    process.exit(0);
  },
  (err) => {
    console.error(err?.stack ?? String(err));
    clearTimeout(timer);
    process.exitCode = 1;
  },
);
