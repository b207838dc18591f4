// The console in a real browser (run with TZ set: the page's times follow the browser's zone):
// sign in, move between sections by the navigation, filter sessions by a local date and time, page
// through the listing and through a long session, expand a collapsed tool call.
//
//   TZ=Asia/Kolkata node console.mjs BASE_URL SESSION_ID LOCAL_SINCE SCREENSHOT_DIR   (token on stdin)
//
// LOCAL_SINCE is a `datetime-local` value (2027-01-15T13:30) typed into "Active from".
// Prints one JSON line: {"ok": true, ...observations} or {"ok": false, "error": ..., "page": ...}.
// tests/e2e/test_console.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser, textOf } from "./driver.mjs";

const [base, sessionId, localSince, shots] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();
const seen = {};

async function current() {
  const links = await driver.findElements(By.css("#console-nav a[aria-current=page]"));
  return links.length === 1 ? links[0].getText() : `${links.length} current links`;
}

async function rowIds() {
  const rows = await driver.findElements(By.css("#sessions tbody tr"));
  return Promise.all(rows.map((row) => row.getAttribute("id")));
}

async function shoot(name) {
  writeFileSync(`${shots}/${name}.png`, await driver.takeScreenshot(), "base64");
}

/** Whether the page is wider than the window (a horizontal scroll bar). */
async function scrollsSideways() {
  return driver.executeScript("return document.documentElement.scrollWidth > window.innerWidth");
}

try {
  await signIn(driver, base, token);
  seen.title = await driver.getTitle();
  seen.reviewsCurrent = await current();
  await driver.findElement(By.id("nav-sessions")).click();
  await driver.wait(until.urlContains("/sessions"), WAIT_MS);
  seen.sessionsCurrent = await current();
  seen.zone = await textOf(driver, By.id("time-zone"));
  seen.allRows = await rowIds();
  seen.firstLastTime = await driver.findElement(By.css("#sessions tbody tr td:last-child time")).getText();

  // The date filter: a local date and time, as a person picks it.
  await driver.executeScript(
    "const input = document.getElementById('filter-since'); input.value = arguments[0];"
      + "input.dispatchEvent(new Event('input', {bubbles: true}));",
    localSince,
  );
  await driver.findElement(By.id("filter-submit")).click();
  await driver.wait(until.urlContains("since="), WAIT_MS);
  seen.filteredUrl = await driver.getCurrentUrl();
  seen.filteredRows = await rowIds();
  seen.sinceShown = await driver.findElement(By.id("filter-since")).getAttribute("value");
  await shoot("sessions");

  // The listing page by page.
  await driver.get(`${base}/sessions?limit=2`);
  seen.page1 = await rowIds();
  await driver.findElement(By.id("sessions-older")).click();
  await driver.wait(until.urlContains("older="), WAIT_MS);
  seen.page2 = await rowIds();
  await driver.findElement(By.id("sessions-newer")).click();
  await driver.wait(until.urlContains("newer="), WAIT_MS);
  seen.page1Again = await rowIds();

  // The long session: cards, collapsed tool calls, pages.
  await driver.get(`${base}/sessions`);
  await driver.findElement(By.css(`#session-${sessionId} a`)).click();
  await driver.wait(until.urlContains(`/sessions/${sessionId}`), WAIT_MS);
  seen.sessionsCurrentOnTranscript = await current();
  seen.range = await textOf(driver, By.id("turn-range"));
  seen.cards = (await driver.findElements(By.css("#transcript .turn.card"))).length;
  const call = await driver.findElement(By.css("#transcript details.tool-call"));
  const input = await call.findElement(By.css("pre"));
  seen.toolInputVisibleBefore = await input.isDisplayed();
  seen.reminderVisibleBefore = await driver.findElement(By.css("#transcript details.reminder pre")).isDisplayed();
  await call.findElement(By.css("summary")).click();
  seen.toolInputVisibleAfter = await input.isDisplayed();
  seen.toolInput = await input.getText();
  seen.promptText = await driver.findElement(By.css("#transcript .turn .prompt")).getText();
  seen.sideways = await scrollsSideways();
  seen.turnTime = await driver.findElement(By.css("#transcript .turn header time")).getText();
  await shoot("session");
  await driver.findElement(By.css("#transcript-pager .later")).click();
  await driver.wait(until.urlContains("after="), WAIT_MS);
  seen.laterRange = await textOf(driver, By.id("turn-range"));
  await driver.findElement(By.css("#transcript-pager .earlier")).click();
  await driver.wait(until.urlContains("before="), WAIT_MS);
  seen.earlierRange = await textOf(driver, By.id("turn-range"));

  // Back to the reviews by the navigation.
  await driver.findElement(By.id("nav-reviews")).click();
  await driver.wait(until.urlContains("/reviews"), WAIT_MS);
  seen.backToReviews = await current();
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (error) {
  await reportFailure(driver, error, `${shots}/failure.png`);
} finally {
  await driver.quit();
}
