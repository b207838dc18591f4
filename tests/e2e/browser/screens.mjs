// Screenshots of console pages for the docs: sign in, then open each page and save it.
//
//   node screens.mjs BASE_URL OUT_DIR NAME=PATH [NAME=PATH …]   (the token comes on stdin)
//
// Saves OUT_DIR/NAME.png for each page (1280×900); prints one JSON line {"ok": true, "saved": [...]}
// or {"ok": false, ...}. Used by scripts/screenshots.py.

import { readFileSync, writeFileSync } from "node:fs";
import { By, until } from "selenium-webdriver";
import { WAIT_MS, reportFailure, signIn, startBrowser } from "./driver.mjs";

const [base, out, ...pages] = process.argv.slice(2);
const token = readFileSync(0, "utf8").trim();
const driver = await startBrowser();

try {
  await driver.manage().window().setRect({ width: 1280, height: 900 });
  await signIn(driver, base, token);
  const saved = [];
  for (const page of pages) {
    const [name, path] = page.split(/=(.*)/s);
    await driver.get(`${base}${path}`);
    await driver.wait(until.elementLocated(By.css("main")), WAIT_MS);
    // Open the first tool call of a transcript, so the picture shows what a click reveals.
    for (const call of (await driver.findElements(By.css("details.tool-call"))).slice(0, 1)) {
      await call.findElement(By.css("summary")).click();
    }
    writeFileSync(`${out}/${name}.png`, await driver.takeScreenshot(), "base64");
    saved.push(name);
  }
  console.log(JSON.stringify({ ok: true, saved }));
} catch (error) {
  await reportFailure(driver, error, `${out}/failure.png`);
} finally {
  await driver.quit();
}
