// Browser half of TestConsolePresenceInBrowser: the console, given a
// control key, shows a channel's presence live and disconnects a user.

import { ok } from "node:assert/strict";
import { env, launch, log, run } from "./lib.mjs";

const base = env("SSEGATE_URL");
const token = env("SSEGATE_TOKEN");
const controlKey = env("SSEGATE_CONTROL_KEY");
const chromiumPath = env("CHROMIUM_PATH");
const waitMs = 10000;

// alice's stream, opened from node; text collects what it received.
const alice = { text: "", ended: false };
const resp = await fetch(`${base}/events?channel=demo`, { headers: { Authorization: `Bearer ${token}` } });
ok(resp.status === 200, `alice's stream: ${resp.status}`);
(async () => {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    alice.text += dec.decode(value);
  }
  alice.ended = true;
})();

const until = async (what, cond) => {
  const deadline = Date.now() + 10000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10s`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

async function main() {
  const browser = await launch(chromiumPath, waitMs);
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/events/console/`);
    await page.fill("#token", controlKey);
    await page.fill("#presence-channel", "demo");
    await page.click("#presence button[type=submit]");
    const row = page.locator('#presence-users tr[data-sub="alice"]');
    await row.waitFor({ timeout: 10000 });
    const ids = await row.locator("td").nth(2).textContent();
    ok(ids.trim().length > 0, "a control key sees connection ids");
    log("alice listed with connection", ids.trim());
    await row.getByRole("button", { name: "Disconnect" }).click();
    await until("alice's stream ends", () => alice.ended);
    ok(alice.text.includes(": end: disconnected"), `alice's stream ended with: ${alice.text.slice(-200)}`);
    await row.waitFor({ state: "detached", timeout: 10000 });
    log("alice disconnected and gone from the list");
    const html = await page.content();
    ok(!html.includes(controlKey), "the key is in the input only, never in the page's markup");
    ok(errors.length === 0, `page errors: ${errors.join("; ")}`);
    console.log("PASS");
  } finally {
    await browser.close();
  }
}

run("console_presence.mjs", main, 6 * waitMs);
