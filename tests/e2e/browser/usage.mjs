// An auditor's look at spend in `warden serve`: sign in, open the usage page for a window, read
// the chart's series and the top spenders, screenshot it; then open the page bare and let it
// learn the browser's time zone.
//
//   node usage.mjs BASE_URL FROM TO SCREENSHOT.png   (the token comes on stdin)
//
// Prints one JSON line: {"ok": true, "series": [...], "spenders": [...], "budgets": [...], "chart": {x, y, width,
// height}, "ratio": N, "zoneUrl": ..., "zoneText": ..., "injected": N} or {"ok": false, ...}.
// tests/e2e/test_usage.py asserts on it.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser, textOf } from "./driver.mjs";

const [base, from, to, screenshot] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();

try {
  await signIn(driver, base, token);
  await driver.get(`${base}/usage?from=${from}&to=${to}&tz=0`);
  const chart = await driver.wait(until.elementLocated(By.id("usage-chart")), WAIT_MS);
  const series = await driver.executeScript(`
    return [...document.querySelectorAll("#usage-chart g.series")].map((g) => ({
      role: g.getAttribute("data-role"),
      points: g.querySelector("polyline").getAttribute("points").trim().split(/\\s+/).length,
      circles: g.querySelectorAll("circle").length,
      colour: g.querySelector("polyline").getAttribute("stroke"),
      heights: [...g.querySelectorAll("circle")].map((c) => Number(c.getAttribute("cy"))),
    }));`);
  const spenders = await driver.executeScript(`
    return [...document.querySelectorAll("#top-spenders tr.spender")].map((tr) => ({
      subject: tr.getAttribute("data-subject"),
      requests: Number(tr.getAttribute("data-requests")),
      cost_nanos: Number(tr.getAttribute("data-cost-nanos")),
      text: tr.cells[0].textContent,
    }));`);
  const budgets = await driver.executeScript(`
    return [...document.querySelectorAll("#budget-leases tr.budget-window")].map((tr) => ({
      budget: tr.getAttribute("data-budget"),
      key: tr.getAttribute("data-key"),
      granted_tokens: Number(tr.getAttribute("data-granted-tokens")),
      instances: Number(tr.getAttribute("data-instances")),
      live: Number(tr.getAttribute("data-live")),
      text: tr.textContent,
    }));`);
  // Anything an injected label could have created.
  const injected = await driver.executeScript(
    `return document.querySelectorAll("main img, main iframe, #usage-chart foreignObject, #usage-chart svg").length
            + document.scripts.length - 1;`,
  );
  const rect = await chart.getRect();
  const ratio = await driver.executeScript("return window.devicePixelRatio;");
  await driver.executeScript("arguments[0].scrollIntoView({block: 'start'});", chart);
  const chartRect = await driver.executeScript(
    "const r = arguments[0].getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height};",
    chart,
  );
  writeFileSync(screenshot, await driver.takeScreenshot(), "base64");
  // Without a zone the page asks the browser for its offset and reloads once with it.
  await driver.get(`${base}/usage`);
  await driver.wait(until.urlContains("tz="), WAIT_MS);
  const zoneText = await textOf(driver, By.id("usage-zone"));
  const zoneUrl = await driver.getCurrentUrl();
  console.log(JSON.stringify({ ok: true, series, spenders, budgets, chart: chartRect, size: rect, ratio, zoneUrl, zoneText, injected }));
} catch (error) {
  await reportFailure(driver, error, screenshot);
} finally {
  await driver.quit();
}
