// Session grants on the `warden serve` web page in a real browser (headless chromium through
// chromedriver).
//
//   node session_grant.mjs approve BASE_URL REVIEW_ID MINUTES SCREENSHOT.png   (token on stdin)
//     sign in, read the review card, type the minutes, press "Approve for this session", then read
//     the flash and the live grants.
//   node session_grant.mjs end BASE_URL GRANT_ID - SCREENSHOT.png             (token on stdin)
//     sign in, press the grant's "End now", read the flash and the live grants.
//   node session_grant.mjs look BASE_URL REVIEW_ID - SCREENSHOT.png           (token on stdin)
//     sign in, read the review's page: its text, whether the approve-for-session button is
//     enabled, and how many elements the tool input holds (escaped text holds none).
//
// Prints one JSON line: {"ok": true, ...observations} or {"ok": false, "error": ..., "page": ...}.
// tests/e2e/test_tool_approvals.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser, textOf } from "./driver.mjs";

const [mode, base, id, minutes, screenshot] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();
const seen = {};

try {
  await signIn(driver, base, token);
  if (mode === "approve") {
    const pending = By.id(`review-${id}`);
    seen.cardText = await textOf(driver, pending);
    const card = await driver.findElement(pending);
    const field = await card.findElement(By.id(`session-minutes-${id}`));
    await field.clear();
    await field.sendKeys(minutes);
    await card.findElement(By.id(`approve-session-${id}`)).click();
    await driver.wait(until.stalenessOf(card), WAIT_MS);
    seen.flash = await textOf(driver, By.id("flash"));
    seen.grantsText = await textOf(driver, By.id("grants"));
  } else if (mode === "end") {
    const row = By.id(`grant-${id}`);
    seen.rowText = await textOf(driver, row);
    const button = await driver.findElement(By.id(`end-button-${id}`));
    await button.click();
    await driver.wait(until.stalenessOf(button), WAIT_MS);
    seen.flash = await textOf(driver, By.id("flash"));
    seen.grantsText = await textOf(driver, By.id("grants"));
  } else if (mode === "look") {
    await driver.get(`${base}/reviews/${id}`);
    seen.cardText = await textOf(driver, By.id(`review-${id}`));
    seen.sessionButtonEnabled = await driver.findElement(By.id(`approve-session-${id}`)).isEnabled();
    const notes = await driver.findElements(By.id(`session-note-${id}`));
    seen.sessionNote = notes.length ? await notes[0].getText() : "";
    const input = await driver.findElements(By.id(`tool-input-${id}`));
    seen.toolInput = input.length ? await input[0].getText() : null;
    seen.toolInputChildren = input.length ? (await input[0].findElements(By.css("*"))).length : null;
    seen.injected = (await driver.findElements(By.id("injected"))).length;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (error) {
  await reportFailure(driver, error, screenshot);
} finally {
  await driver.quit();
}
