// What the browser scripts share: reading their settings from the
// environment the Go test sets, launching Chromium the one way the tests
// do, and running main under a last-resort deadline.

import { chromium } from "playwright-core";

// env returns an environment variable, or fallback; without either it
// throws, naming the variable.
export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") throw new Error(`environment variable ${name} is required`);
  return v;
};

// log writes a line the Go test passes through as a comment.
export const log = (...a) => console.log("#", ...a);

// launch starts Debian's Chromium headless (--headless --no-sandbox
// --disable-gpu, and no background traffic); extraArgs are added.
export function launch(executablePath, waitMs, extraArgs = []) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      ...extraArgs,
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: Math.max(waitMs, 30000),
  });
}

// run runs main, with a last-resort deadline below the one the Go test
// sets, so that the process ends by itself: Playwright kills the browser
// it launched when the process exits. A failure sets a non-zero exit code.
export function run(name, main, deadlineMs) {
  const deadline = setTimeout(() => {
    console.error(`${name}: no result after ${deadlineMs}ms`);
    process.exit(2);
  }, deadlineMs);
  main().then(
    () => clearTimeout(deadline),
    (err) => {
      console.error(err?.stack ?? String(err));
      clearTimeout(deadline);
      process.exitCode = 1;
    },
  );
}
