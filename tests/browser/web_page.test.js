// Drives the clipkit web page in headless Chromium: node web_page.test.js URL IMAGE
"use strict";
const { chromium } = require("playwright-core");
const assert = require("assert");

(async () => {
  const [url, image] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
  // bypassCSP: the page forbids eval (its CSP), which waitForFunction needs
  const page = await (await browser.newContext({ bypassCSP: true })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(url);
    await page.waitForSelector("#status:has-text('images indexed')");
    console.log("loaded:", await page.textContent("#status"));

    // text search -> a grid of results with thumbnails, scores and captions
    await page.fill("#q", "a yellow star");
    await page.click("#go");
    await page.waitForSelector(".card.result");
    const n = await page.locator(".card.result").count();
    assert.ok(n >= 10, `expected results, got ${n}`);
    await page.waitForFunction(() => [...document.querySelectorAll(".card img")].every((i) => i.complete && i.naturalWidth > 0));
    const score = await page.textContent(".card.result .score");
    assert.match(score, /^-?\d\.\d{3}$/);
    assert.ok((await page.textContent(".card.result .caption")).length > 0);
    console.log(`text search: ${n} results, first score ${score}`);

    // details and "more like this": the clicked image comes back first
    const id = await page.getAttribute(".card.result >> nth=2", "data-id");
    await page.click(".card.result >> nth=2");
    await page.waitForSelector("#details.open");
    assert.ok((await page.textContent("#dmeta")).includes('"path"'));
    await page.click("#more");
    await page.waitForSelector(`#status:has-text('results for images like #${id} ')`);
    assert.strictEqual(await page.getAttribute(".card.result >> nth=0", "data-id"), id);
    console.log(`more like this #${id}: ok`);

    // upload an image through the file input (what the drop zone also uses)
    await page.setInputFiles("#file", image);
    await page.waitForSelector("#status:has-text('results for chelsea.jpg')");
    assert.ok((await page.locator(".card.result").count()) > 0);
    console.log("upload:", await page.textContent("#status"));
    assert.deepStrictEqual(errors, []);
    console.log("browser test passed");
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error("browser test FAILED:", e);
  process.exit(1);
});
