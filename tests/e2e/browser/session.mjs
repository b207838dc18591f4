// An investigator's path through `warden serve`'s session pages in a real browser: sign in, find
// the session in the list, open it, expand its collapsed tool calls and results, and read it.
//
//   node session.mjs BASE_URL SESSION_ID SCREENSHOT.png   (the token comes on stdin)
//
// Prints one JSON line: {"ok": true, "rowText": ..., "transcript": ..., "turns": N} or
// {"ok": false, "error": ..., "page": ...}. tests/e2e/test_audit_trail.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser, textOf } from "./driver.mjs";

const [base, sessionId, screenshot] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();

try {
  await signIn(driver, base, token);
  await driver.get(`${base}/sessions`);
  const row = By.id(`session-${sessionId}`);
  const rowText = await textOf(driver, row);
  await driver.findElement(row).findElement(By.css("a")).click();
  await driver.wait(until.urlContains(`/sessions/${sessionId}`), WAIT_MS);
  // Tool calls, results and system reminders are collapsed: open them all, as a reader would.
  for (const summary of await driver.findElements(By.css("#transcript details > summary"))) {
    await summary.click();
  }
  const transcript = await textOf(driver, By.id("transcript"));
  const turns = (await driver.findElements(By.css("#transcript .turn"))).length;
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  console.log(JSON.stringify({ ok: true, rowText, transcript, turns }));
} catch (error) {
  await reportFailure(driver, error, screenshot);
} finally {
  await driver.quit();
}
