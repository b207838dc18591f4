// The approver's path through the `warden serve` web page in a real browser (headless Debian
// chromium driven through chromedriver): log in with a token, find the pending review, approve it
// with a comment, and see it among the decisions.
//
//   node approve.mjs BASE_URL REVIEW_ID COMMENT SCREENSHOT.png   (the token comes on stdin)
//
// Prints one JSON line: {"ok": true, "pendingText": ..., "decidedText": ...} or
// {"ok": false, "error": ..., "page": ...}. tests/e2e/test_approvals.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser, textOf } from "./driver.mjs";

const [base, reviewId, comment, screenshot] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();

try {
  await signIn(driver, base, token);

  const pending = By.id(`review-${reviewId}`);
  const pendingText = await textOf(driver, pending);
  const card = await driver.findElement(pending);
  await card.findElement(By.name("comment")).sendKeys(comment);
  await card.findElement(By.name("approve")).click();

  // After the redirect the review is no longer pending; it shows among the recent decisions.
  await driver.wait(until.stalenessOf(card), WAIT_MS);
  const decided = By.id(`decision-${reviewId}`);
  const decidedText = await textOf(driver, decided);
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  console.log(JSON.stringify({ ok: true, pendingText, decidedText }));
} catch (error) {
  await reportFailure(driver, error, screenshot);
} finally {
  await driver.quit();
}
