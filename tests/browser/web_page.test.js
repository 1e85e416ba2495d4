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

    // the search box takes the header's free width; long paths are ellipsized with the full path as tooltip
    const qWidth = await page.evaluate(() => document.getElementById("q").getBoundingClientRect().width);
    assert.ok(qWidth > 400, `search box only ${qWidth}px wide`);
    const pathStyle = await page.evaluate(() => {
      const p = document.querySelector(".card.result .path");
      return { overflow: getComputedStyle(p).textOverflow, title: p.title };
    });
    assert.strictEqual(pathStyle.overflow, "ellipsis");
    assert.match(pathStyle.title, /^\/.*\.jpg$/);

    // a shareable URL: ?q= runs the search on load, and the URL follows new searches
    await page.goto(url + "?q=" + encodeURIComponent("a red circle"));
    await page.waitForSelector("#status:has-text('results for')");
    assert.strictEqual(await page.inputValue("#q"), "a red circle");
    const first = await page.locator(".card.result").count();
    assert.strictEqual(first, 24, `a page is 24 results, got ${first}`);
    console.log("?q= URL:", await page.textContent("#status"));

    // "load more" appends the next page
    await page.click("#more-results");
    await page.waitForFunction(() => document.querySelectorAll(".card.result").length === 48);
    const ids = await page.$$eval(".card.result", (cs) => cs.map((c) => c.dataset.id));
    assert.strictEqual(new Set(ids).size, 48, "load more repeated results");
    console.log("load more: 48 distinct results");

    // a split filter: only val images, and the filter goes into the URL
    await page.fill("#split", "val");
    await page.dispatchEvent("#split", "change");
    await page.waitForSelector("#status:has-text('(split val)')");
    const splits = await page.$$eval(".card.result", (cs) => cs.map((c) => c.textContent));
    assert.ok(splits.length > 0 && splits.every((t) => t.includes("\u00b7 val")), "split filter let other splits through");
    assert.ok(page.url().includes("split=val") && page.url().includes("q=a+red+circle"), page.url());
    console.log(`split filter: ${splits.length} val results; URL ${page.url().split("/").pop()}`);
    // ... and a folder filter from a shared URL (no val2017 images under train2017)
    await page.goto(url + "?q=a+circle&folder=train2017&split=val");
    await page.waitForSelector("#status:has-text('0 results')");
    await page.goto(url + "?q=a+circle&folder=val2017");
    await page.waitForSelector("#status:has-text('under val2017')");
    const paths = await page.$$eval(".card.result .path", (ps) => ps.map((p) => p.title));
    assert.ok(paths.length > 0 && paths.every((p) => p.includes("/val2017/")), "folder filter");
    // ?image=ID: more like an indexed image
    await page.goto(url + "?image=" + id);
    await page.waitForSelector(`#status:has-text('results for images like #${id} ')`);
    assert.strictEqual(await page.getAttribute(".card.result >> nth=0", "data-id"), id);
    console.log(`?image=${id} URL: ok`);

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
