// Headless Chromium end-to-end test of analyticsd's browser ingestion.
//
//   node --test browser_test.mjs            (ANALYTICSD=path/to/analyticsd)
//   node browser_test.mjs path/to/analyticsd
//
// Starts analyticsd on a free loopback port (temporary SQLite store, admin
// token), creates two sites, serves two pages from a local static server on
// another loopback port and drives Debian's Chromium (playwright-core, no
// downloaded browser):
//   page A (/a/): the official Plausible tracker (npm @plausible-analytics/
//                 tracker) with endpoint = analyticsd's /api/event
//   page B (/b/): our tracker, analyticsd's /js/script.js
// On each: load (pageview), a custom event with a prop, an SPA navigation
// (history.pushState). Page B also: a call queued before the script loaded,
// an outbound link, a file download and an engagement event. Then the Stats
// API (POST /api/v2/query, admin token) must show all of them. A screenshot
// of page B goes to $TEST_OUTPUT_DIR (default build/test-output/ under the
// repo, else $TMPDIR).
//
// Missing Chromium or analyticsd is a failure, never a skip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");
const ADMIN_TOKEN = "adm_browser_0123456789abcdef";
// HeadlessChrome's own user agent is dropped as a bot by the engine, as it
// should be; the test browses as a regular desktop Chrome.
const UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like " +
  "Gecko) Chrome/120.0.0.0 Safari/537.36";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BINARY = process.env.ANALYTICSD ||
  process.argv.slice(2).find((a) => !a.startsWith("-"));
const OFFICIAL = "official.test";
const OURS = "ours.test";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function outputDir() {
  const dirs = [process.env.TEST_OUTPUT_DIR, path.join(REPO, "build", "test-output"),
    path.join(os.tmpdir(), "analytics-test-output")].filter(Boolean);
  for (const d of dirs) {
    try {
      fs.mkdirSync(d, { recursive: true });
      fs.accessSync(d, fs.constants.W_OK);
      return d;
    } catch {}
  }
  throw new Error("no writable output directory");
}

class Analyticsd {
  async start(binary) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "analyticsd-browser-"));
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.log = "";
    this.proc = spawn(binary, [], {
      env: {
        ...process.env,
        ANALYTICS_LISTEN: `127.0.0.1:${this.port}`,
        ANALYTICS_STORE: `sqlite://${this.dir}/analytics.db`,
        ANALYTICS_ADMIN_TOKEN: ADMIN_TOKEN,
        ANALYTICS_THREADS: "16",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc.stdout.on("data", (b) => (this.log += b));
    this.proc.stderr.on("data", (b) => (this.log += b));
    const deadline = Date.now() + 30000;
    for (;;) {
      if (this.proc.exitCode !== null) {
        throw new Error(`analyticsd exited with ${this.proc.exitCode}:\n${this.log}`);
      }
      try {
        if ((await fetch(`${this.base}/health`)).status === 200) return;
      } catch {}
      if (Date.now() > deadline) {
        throw new Error(`analyticsd did not answer /health in 30 s:\n${this.log}`);
      }
      await sleep(50);
    }
  }

  async admin(method, p, body) {
    const r = await fetch(this.base + p, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, text, json: () => JSON.parse(text) };
  }

  async query(site, metrics, dimensions, filters) {
    const body = { site_id: site, date_range: "all", metrics };
    if (dimensions) body.dimensions = dimensions;
    if (filters) body.filters = filters;
    const r = await this.admin("POST", "/api/v2/query", body);
    assert.equal(r.status, 200, `query ${JSON.stringify(body)}: ${r.text}`);
    return r.json().results;
  }

  async breakdown(site, dimension, metric = "pageviews", filters) {
    const out = {};
    for (const row of await this.query(site, [metric], [dimension], filters)) {
      out[row.dimensions[0]] = row.metrics[0];
    }
    return out;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode;
    const exited = new Promise((r) => this.proc.once("exit", (code) => r(code)));
    this.proc.kill("SIGTERM");
    let timer;
    const timeout = new Promise((r) => (timer = setTimeout(() => r("timeout"), 30000)));
    const code = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (code === "timeout") this.proc.kill("SIGKILL");
    return code;
  }

  cleanup() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill("SIGKILL");
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function pageA(api) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Page A (official tracker)</title></head>
<body><h1>Page A: official Plausible tracker</h1><p id="where"></p>
<script type="module">
  import { init, track } from "/plausible.js";
  // Plausible skips navigator.webdriver browsers unless this is set (its
  // own switch for automated tests); Playwright's Chromium is one.
  window.__plausible = true;
  window.sent = [];
  init({ domain: "${OFFICIAL}", endpoint: "${api}", captureOnLocalhost: true, logging: false });
  window.custom = (name, props) => new Promise((resolve) =>
    track(name, { props, callback: (r) => { window.sent.push(r); resolve(r); } }));
  window.ready = true;
</script></body></html>`;
}

function pageB(base) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Page B (our tracker)</title>
<script>window.analytics = window.analytics || function () { (window.analytics.q = window.analytics.q || []).push(arguments); };
analytics("Queued", { props: { early: "yes" } });</script>
<script defer data-domain="${OURS}" data-allow-localhost src="${base}/js/script.js"></script>
</head>
<body style="font-family: sans-serif"><h1>Page B: analyticsd /js/script.js</h1>
<p><a id="out" href="https://example.org/elsewhere?x=1" target="_blank">outbound</a>
 <a id="dl" href="/files/report.pdf?v=2" download>report.pdf</a></p>
<div style="height: 3000px; background: linear-gradient(#fff, #9cf)">tall content</div>
<script>document.addEventListener("DOMContentLoaded", () => { window.ready = true; });</script>
</body></html>`;
}

function startStatic(pages) {
  const bundle = path.join(HERE, "node_modules", "@plausible-analytics", "tracker", "plausible.js");
  if (!fs.existsSync(bundle)) {
    throw new Error(`${bundle} missing: run tests/browser/run.sh (npm ci) first`);
  }
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, "http://x").pathname;
    if (p === "/plausible.js") {
      res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
      return res.end(fs.readFileSync(bundle));
    }
    if (p.startsWith("/files/")) {
      res.writeHead(200, { "Content-Type": "application/pdf" });
      return res.end("%PDF-1.4\n");
    }
    const page = p.startsWith("/a/") ? pages.a : p.startsWith("/b/") ? pages.b : null;
    if (!page) {
      res.writeHead(404);
      return res.end("not found");
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(page);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Polls until fn() (an async assertion) passes or the timeout ends.
async function eventually(fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

// Records the tracker's POSTs to /api/event and their answers.
function recordEvents(page, into) {
  page.on("requestfinished", async (req) => {
    if (req.method() !== "POST" || !req.url().endsWith("/api/event")) return;
    const resp = await req.response();
    let body;
    try { body = JSON.parse(req.postData() || ""); } catch { body = req.postData(); }
    into.push({ body, status: resp ? resp.status() : 0, type: req.resourceType() });
  });
  page.on("requestfailed", (req) => {
    if (req.url().endsWith("/api/event")) {
      into.push({ body: req.postData(), status: 0, failure: req.failure()?.errorText });
    }
  });
}

test("official Plausible tracker and /js/script.js in headless Chromium", async (t) => {
  assert.ok(BINARY, "usage: node browser_test.mjs path/to/analyticsd (or ANALYTICSD=...)");
  assert.ok(fs.existsSync(BINARY), `analyticsd binary not found: ${BINARY}`);
  assert.ok(fs.existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: install Debian's 'chromium' package ` +
    "(scripts/setup.sh does) or set CHROMIUM=/path/to/chromium");
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    assert.fail(`playwright-core missing (${e.message}): run tests/browser/run.sh`);
  }

  const srv = new Analyticsd();
  t.after(() => srv.cleanup());
  await srv.start(BINARY);
  for (const domain of [OFFICIAL, OURS]) {
    const r = await srv.admin("POST", "/api/v1/sites", { domain, timezone: "UTC" });
    assert.equal(r.status, 201, `add site ${domain}: ${r.text}`);
  }

  const pages = { a: pageA(`${srv.base}/api/event`), b: pageB(srv.base) };
  const stat = await startStatic(pages);
  t.after(() => { stat.closeAllConnections(); stat.close(); });
  const site = `http://127.0.0.1:${stat.address().port}`;

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "chromium-profile-"));
  t.after(() => fs.rmSync(profile, { recursive: true, force: true }));
  // A fresh temporary profile (--user-data-dir, which playwright takes as
  // launchPersistentContext's first argument).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update",
      "--disable-sync"],
    timeout: 60000,
    userAgent: UA,
    viewport: { width: 1280, height: 800 },
  });
  t.after(() => context.close());
  const consoleErrors = [];

  // ------------------------------------------------ page A: official tracker
  const sentA = [];
  const a = await context.newPage();
  a.on("pageerror", (e) => consoleErrors.push(`A: ${e.message}`));
  recordEvents(a, sentA);
  await a.goto(`${site}/a/`);
  await a.waitForFunction(() => window.ready === true);
  const result = await a.evaluate(() => window.custom("Signup", { plan: "pro" }));
  assert.equal(result && result.status, 202, `custom event answer: ${JSON.stringify(result)}`);
  await a.evaluate(() => history.pushState({}, "", "/a/next"));

  await eventually(async () => {
    assert.deepEqual(await srv.breakdown(OFFICIAL, "event:page"), { "/a": 1, "/a/next": 1 });  // trailing "/" dropped
  });
  await eventually(async () => {
    const names = await srv.breakdown(OFFICIAL, "event:name", "events");
    assert.equal(names.Signup, 1, JSON.stringify(names));
    const plans = await srv.breakdown(OFFICIAL, "event:props:plan", "events",
      [["is", "event:name", ["Signup"]]]);
    assert.deepEqual(plans, { pro: 1 });
  });
  for (const s of sentA) assert.equal(s.status, 202, `page A event: ${JSON.stringify(s)}`);

  // ---------------------------------------------------- page B: our tracker
  const sentB = [];
  const b = await context.newPage();
  // Keeps a copy of every beacon body (playwright does not always expose
  // the body of a Blob beacon sent during page load).
  await b.addInitScript(() => {
    const beacon = navigator.sendBeacon.bind(navigator);
    window.beacons = [];
    navigator.sendBeacon = (url, data) => {
      window.beacons.push(data);
      return beacon(url, data);
    };
  });
  b.on("pageerror", (e) => consoleErrors.push(`B: ${e.message}`));
  recordEvents(b, sentB);
  await b.goto(`${site}/b/`);
  await b.waitForFunction(() => window.ready === true && typeof window.analytics === "function" && !window.analytics.q);
  await b.evaluate(() => window.analytics("Signup", { props: { plan: "pro" } }));
  await b.evaluate(() => history.pushState({}, "", "/b/next"));
  await b.evaluate(() => history.replaceState({}, "", "/b/next"));  // same path: no pageview
  await b.evaluate(() => history.pushState({}, "", "/b/next?tab=2"));  // same path: no pageview
  // Outbound link (opens a tab: block the request) and a file download.
  await context.route("https://example.org/**", (route) => route.abort());
  await b.click("#out");
  await b.click("#dl");
  const shot = path.join(outputDir(), "browser_test_page_b.png");
  await b.screenshot({ path: shot });
  await b.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await b.waitForTimeout(300);
  // The page goes hidden: our tracker sends an engagement event.
  await b.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  });

  await eventually(async () => {
    assert.deepEqual(await srv.breakdown(OURS, "event:page"), { "/b": 1, "/b/next": 1 });
  });
  await eventually(async () => {
    const names = await srv.breakdown(OURS, "event:name", "events");
    assert.equal(names.Signup, 1, JSON.stringify(names));
    assert.equal(names.Queued, 1, JSON.stringify(names));
    assert.equal(names["Outbound Link: Click"], 1, JSON.stringify(names));
    assert.equal(names["File Download"], 1, JSON.stringify(names));
    assert.deepEqual(await srv.breakdown(OURS, "event:props:plan", "events",
      [["is", "event:name", ["Signup"]]]), { pro: 1 });
    assert.deepEqual(await srv.breakdown(OURS, "event:props:early", "events"), { yes: 1 });
    assert.deepEqual(await srv.breakdown(OURS, "event:props:url", "events",
      [["is", "event:name", ["Outbound Link: Click"]]]), { "https://example.org/elsewhere?x=1": 1 });
    assert.deepEqual(await srv.breakdown(OURS, "event:props:url", "events",
      [["is", "event:name", ["File Download"]]]), { [`${site}/files/report.pdf`]: 1 });
  });
  // What our tracker sent: Plausible bodies, all by sendBeacon, all 202.
  const bodies = await b.evaluate(() =>
    Promise.all(window.beacons.map(async (d) => JSON.parse(await d.text()))));
  // An SPA navigation first closes the previous page with its engagement.
  assert.deepEqual(bodies.map((x) => x.n), ["pageview", "Queued", "Signup", "engagement",
    "pageview", "Outbound Link: Click", "File Download", "engagement"]);
  for (const [i, p] of [[3, "/b/"], [7, "/b/next"]]) {
    const eng = bodies[i];
    assert.equal(new URL(eng.u).pathname, p, JSON.stringify(eng));
    assert.equal(eng.i, false);
    assert.ok(eng.e > 0 && eng.sd > 0 && eng.sd <= 100, JSON.stringify(eng));
  }
  assert.equal(bodies[7].sd, 100, "scrolled to the bottom");
  assert.deepEqual(bodies[0], { n: "pageview", r: null, w: 1280, d: OURS, u: `${site}/b/` });
  assert.deepEqual(bodies[2].p, { plan: "pro" });
  await eventually(async () => assert.equal(sentB.length, bodies.length, JSON.stringify(sentB)));
  assert.ok(sentB.every((s) => s.type === "ping"), JSON.stringify(sentB));
  for (const s of sentB) assert.equal(s.status, 202, `page B event: ${JSON.stringify(s)}`);
  const size = fs.statSync(shot).size;
  assert.ok(size > 1000, `screenshot ${shot} is ${size} bytes`);
  assert.deepEqual(consoleErrors, []);
  t.diagnostic(`screenshot: ${shot}`);

  await context.close();
  assert.equal(await srv.stop(), 0, `analyticsd did not stop cleanly:\n${srv.log}`);
});

