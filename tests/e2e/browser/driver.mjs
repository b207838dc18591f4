// Headless Debian chromium through chromedriver, and the approver's sign-in on `warden serve`'s
// pages: shared by the browser tests (approve.mjs, session.mjs).

import { writeFileSync } from "node:fs";
import { Builder, By, until } from "selenium-webdriver";
import chrome from "selenium-webdriver/chrome.js";

export const WAIT_MS = 10_000;

/** A headless chromium that talks to nothing but the pages it is sent to. */
export async function startBrowser() {
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
  return new Builder().forBrowser("chrome").setChromeOptions(options).setChromeService(service).build();
}

/** Signs in on `base`/login with `token`, then waits for `landing` in the URL. */
export async function signIn(driver, base, token, landing = "/reviews") {
  await driver.get(`${base}/login`);
  await driver.findElement(By.name("token")).sendKeys(token);
  await driver.findElement(By.css("form button[type=submit], form input[type=submit]")).click();
  await driver.wait(until.urlContains(landing), WAIT_MS);
}

/** The visible text of the element `locator` finds, once it exists. */
export async function textOf(driver, locator) {
  const element = await driver.wait(until.elementLocated(locator), WAIT_MS);
  return element.getText();
}

/** Prints the failure line (with the page's text) and saves a screenshot, if the page is there. */
export async function reportFailure(driver, error, screenshot) {
  let page = "";
  try {
    page = await driver.findElement(By.css("body")).getText();
    writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  } catch {
    // the page itself is gone: report the first error only
  }
  console.log(JSON.stringify({ ok: false, error: String(error), page }));
  process.exitCode = 1;
}
