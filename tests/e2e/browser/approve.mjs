// The approver's path through the `warden serve` web page in a real browser (headless Debian
// chromium driven through chromedriver): log in with a token, find the pending review, approve it
// with a comment, and see it among the decisions.
//
//   node approve.mjs BASE_URL REVIEW_ID COMMENT SCREENSHOT.png   (the token comes on stdin)
//
// Prints one JSON line: {"ok": true, "pendingText": ..., "decidedText": ...} or
// {"ok": false, "error": ..., "page": ...}. tests/e2e/test_approvals.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { Builder, By, until } from "selenium-webdriver";
import chrome from "selenium-webdriver/chrome.js";

const [base, reviewId, comment, screenshot] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const WAIT_MS = 10_000;

const options = new chrome.Options()
  .setChromeBinaryPath("/usr/bin/chromium")
  .addArguments(
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
  );
const service = new chrome.ServiceBuilder("/usr/bin/chromedriver");
const driver = await new Builder().forBrowser("chrome").setChromeOptions(options).setChromeService(service).build();

async function text(locator) {
  const element = await driver.wait(until.elementLocated(locator), WAIT_MS);
  return element.getText();
}

try {
  await driver.get(`${base}/login`);
  await driver.findElement(By.name("token")).sendKeys(token);
  await driver.findElement(By.css("form button[type=submit], form input[type=submit]")).click();
  await driver.wait(until.urlContains("/reviews"), WAIT_MS);

  const pending = By.id(`review-${reviewId}`);
  const pendingText = await text(pending);
  const card = await driver.findElement(pending);
  await card.findElement(By.name("comment")).sendKeys(comment);
  await card.findElement(By.name("approve")).click();

  // After the redirect the review is no longer pending; it shows among the recent decisions.
  await driver.wait(until.stalenessOf(card), WAIT_MS);
  const decided = By.id(`decision-${reviewId}`);
  const decidedText = await text(decided);
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  console.log(JSON.stringify({ ok: true, pendingText, decidedText }));
} catch (error) {
  let page = "";
  try {
    page = await driver.findElement(By.css("body")).getText();
    writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  } catch {
    // the page itself is gone: report the first error only
  }
  console.log(JSON.stringify({ ok: false, error: String(error), page }));
  process.exitCode = 1;
} finally {
  await driver.quit();
}
