// An approver signs into `warden serve`'s console through the organisation's identity provider
// (scripts/test_idp.py) in a real browser (headless Debian chromium through chromedriver): the
// sign-in page's "Sign in with test-idp", the provider's form, back to the reviews page.
//
//   node sign_in.mjs BASE_URL USERNAME GROUPS SCREENSHOT.png
//
// Prints one JSON line: {"ok": true, "whoami": ..., "flash": ..., "url": ...} or
// {"ok": false, "error": ..., "page": ...}. tests/e2e/test_sign_in.py asserts on it.

import { writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, startBrowser, textOf } from "./driver.mjs";

const [base, username, groups, screenshot] = process.argv.slice(2);
const driver = await startBrowser();

try {
  await driver.get(`${base}/login`);
  await driver.wait(until.elementLocated(By.id("sign-in-test-idp")), WAIT_MS).click();
  const user = await driver.wait(until.elementLocated(By.id("username")), WAIT_MS);
  await user.clear();
  await user.sendKeys(username);
  const groupField = await driver.findElement(By.id("groups"));
  await groupField.clear();
  await groupField.sendKeys(groups);
  await driver.findElement(By.id("idp-submit")).click();
  await driver.wait(until.urlContains("/reviews"), WAIT_MS);
  const whoami = await textOf(driver, By.id("whoami"));
  const flash = await textOf(driver, By.id("flash"));
  const url = await driver.getCurrentUrl();
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  console.log(JSON.stringify({ ok: true, whoami, flash, url }));
} catch (error) {
  await reportFailure(driver, error, screenshot);
} finally {
  await driver.quit();
}
