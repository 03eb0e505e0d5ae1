/*
 * browser.mjs: Debian's Chromium, headless, driven by playwright-core.
 *
 * newPage() opens a page in a fresh context (own cookies) and records every
 * uncaught page error and console error, so tests can assert there were none.
 * screenshot() keeps a picture of a page in build/browser/.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO } from "./server.mjs";

export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/* Headless, no sandbox (root), and no background traffic: this machine has no network. */
export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, timeout: 30000, args: CHROMIUM_ARGS });
}

/*
 * Opens a page in a new context. Resolves to { context, page, errors } where
 * errors is a live list of strings ("pageerror: ..." or "console: ...").
 */
export async function newPage(browser) {
  const context = await browser.newContext();
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  return { context, page, errors };
}

/*
 * Saves a full-page PNG of `page` as build/browser/<name>.png (the browser
 * tests' output, for a person to look at) and resolves to its path.
 */
export async function screenshot(page, name) {
  const dir = join(REPO, "build", "browser");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
