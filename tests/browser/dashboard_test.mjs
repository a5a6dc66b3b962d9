// Headless Chromium test of analyticsd's web dashboard.
//
//   node dashboard_test.mjs path/to/analyticsd     (or ANALYTICSD=...)
//
// Starts analyticsd (temporary SQLite store, admin token), ingests known
// events through the API (canonical /api/track with explicit visitors, plus
// the Swetrix protocol for errors and page timings), then drives Debian's
// Chromium (playwright-core, no downloaded browser):
//   - /dashboard without a session goes to the login page; a wrong token is
//     refused; the admin token logs in;
//   - the metric cards and the top rows of the panels equal the Stats API's
//     own answers for the same range;
//   - a click on a page row filters everything (cards equal the filtered API
//     answer, the URL holds the filter, a chip removes it);
//   - a period change updates the URL and the numbers;
//   - screenshots at desktop and phone width go to $TEST_OUTPUT_DIR;
//   - a shared link shows the site without login; once revoked it does not;
//   - no request leaves the server's origin; no page errors (CSP included).
// Missing Chromium or analyticsd is a failure, never a skip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");
const ADMIN_TOKEN = "adm_dashboard_0123456789abcdef";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BINARY = process.env.ANALYTICSD || process.argv.slice(2).find((a) => !a.startsWith("-"));
const SITE = "dash.test";
const UA = {
  chrome: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  firefox: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
  mac: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "analyticsd-dashboard-"));
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
      if (this.proc.exitCode !== null) throw new Error(`analyticsd exited:\n${this.log}`);
      try {
        if ((await fetch(`${this.base}/health`)).status === 200) return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`analyticsd did not start:\n${this.log}`);
      await sleep(50);
    }
  }

  async call(method, p, body, headers = {}) {
    const r = await fetch(this.base + p, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: r.status, text, json };
  }

  async query(body) {
    const r = await this.call("POST", "/api/v2/query", { site_id: SITE, ...body });
    assert.equal(r.status, 200, `query ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode;
    const exited = new Promise((r) => this.proc.once("exit", (code) => r(code)));
    this.proc.kill("SIGTERM");
    let timer;
    const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r("timeout"), 30000)))]);
    clearTimeout(timer);
    if (code === "timeout") this.proc.kill("SIGKILL");
    return code;
  }

  cleanup() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill("SIGKILL");
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const dayStr = (d) => d.toISOString().slice(0, 10);
function addDays(s, n) {
  const d = new Date(s + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return dayStr(d);
}

// Known traffic: five visitors today, two three days ago, Swetrix errors and
// page timings today.
async function ingest(srv, shortId) {
  const now = Date.now();
  const todayStart = Date.parse(dayStr(new Date(now)) + "T00:00:00Z");
  // Today's events lie in the last minute (so all are "live" for the
  // whole test), never before today's start.
  let t = Math.max(now - 60 * 1000, todayStart + 1000);
  const at = () => new Date((t += 1000)).toISOString();
  const old = Date.parse(addDays(dayStr(new Date(now)), -3) + "T12:00:00Z");
  let o = old;
  const atOld = () => new Date((o += 1000)).toISOString();
  const ev = (ip, ua, url, extra = {}) => ({ site: SITE, name: "pageview", ip, user_agent: UA[ua],
    url: `https://${SITE}${url}`, ...extra });
  const events = [
    ev("10.0.0.6", "chrome", "/", { ts: atOld(), country: "US" }),
    ev("10.0.0.7", "firefox", "/old", { ts: atOld(), country: "US" }),
    ev("10.0.0.1", "chrome", "/", { ts: at(), referrer: "https://www.google.com/search?q=x", screen_width: 1280, country: "US" }),
    ev("10.0.0.1", "chrome", "/pricing", { ts: at(), screen_width: 1280, country: "US" }),
    { ...ev("10.0.0.1", "chrome", "/pricing", { ts: at(), country: "US" }), name: "Signup", props: { plan: "pro" } },
    ev("10.0.0.2", "firefox", "/?utm_source=hn&utm_medium=social&utm_campaign=launch",
      { ts: at(), referrer: "https://news.ycombinator.com/item?id=1", screen_width: 1440, country: "GB" }),
    ev("10.0.0.3", "iphone", "/pricing", { ts: at(), screen_width: 390, country: "DE" }),
    ev("10.0.0.3", "iphone", "/docs", { ts: at(), screen_width: 390, country: "DE" }),
    { ...ev("10.0.0.3", "iphone", "/docs", { ts: at(), country: "DE" }), name: "Signup", props: { plan: "free" } },
    ev("10.0.0.4", "mac", "/docs", { ts: at(), screen_width: 1680, country: "FR" }),
    ev("10.0.0.5", "chrome", "/blog/post-1", { ts: at(), referrer: "https://news.ycombinator.com/", screen_width: 1280, country: "US" }),
    // More pages than a panel's top 10, for the details view.
    ...[...Array(11).keys()].map((i) => ev("10.0.0.5", "chrome", `/blog/post-${i + 2}`, { ts: at(), country: "US" })),
  ];
  for (const e of events) {
    const r = await srv.call("POST", "/api/track", e);
    assert.equal(r.status, 202, `track ${JSON.stringify(e)}: ${r.text}`);
    assert.deepEqual(r.json, { accepted: true }, JSON.stringify(e));
  }
  // Swetrix: a pageview with timings, and two errors.
  const sw = (p, body) => fetch(`${srv.base}${p}`, {
    method: "POST", headers: { "Content-Type": "application/json", "User-Agent": UA.chrome }, body: JSON.stringify(body) });
  let r = await sw("/log", { pid: shortId, pg: "/swetrix", lc: "en-US", tz: "Europe/Berlin",
    perf: { dns: 5, tls: 10, conn: 20, response: 30, render: 100, dom_load: 400, page_load: 800, ttfb: 50 } });
  assert.equal(r.status, 201, await r.text());
  for (const msg of ["x is undefined", "y is undefined"]) {
    r = await sw("/log/error", { pid: shortId, pg: "/swetrix", name: "TypeError", message: msg, lineno: 3, colno: 7 });
    assert.equal(r.status, 201, await r.text());
  }
}

// The metric cards' raw values, in card order.
const METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"];
async function cards(page) {
  return page.$$eval(".card", (cs) => cs.map((c) => [c.dataset.metric, Number(c.querySelector(".value").dataset.raw)]));
}
async function apiCards(srv, range, filters = []) {
  const r = await srv.query({ date_range: range, metrics: METRICS, filters });
  return METRICS.map((m, i) => [m, r.results[0].metrics[i]]);
}
async function panelRows(page, panel) {
  return page.$$eval(`#panel-${panel} .panel-body .row`, (rows) => rows.map((r) =>
    [r.dataset.value, ...[...r.querySelectorAll(".nums [data-raw]")].map((n) => Number(n.dataset.raw))]));
}
async function apiRows(srv, range, dim, metrics, filters = []) {
  const r = await srv.query({ date_range: range, metrics, dimensions: [dim], filters,
    order_by: [[metrics[0], "desc"]], pagination: { limit: 10 } });
  return r.results.map((x) => [x.dimensions[0], ...x.metrics]);
}
async function ready(page, after = 0) {
  await page.waitForFunction((g) => document.body.dataset.state === "ready" &&
    Number(document.body.dataset.generation || 0) > g, after, { timeout: 20000 });
  return page.evaluate(() => Number(document.body.dataset.generation));
}

test("the dashboard shows the Stats API's numbers, filters, periods, shared links", async (t) => {
  assert.ok(BINARY, "usage: node dashboard_test.mjs path/to/analyticsd");
  assert.ok(fs.existsSync(BINARY), `analyticsd not found: ${BINARY}`);
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium (scripts/setup.sh) or set CHROMIUM`);
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    assert.fail(`playwright-core missing (${e.message}): run tests/browser/dashboard_run.sh`);
  }
  const out = outputDir();
  const srv = new Analyticsd();
  t.after(() => srv.cleanup());
  await srv.start(BINARY);
  const added = await srv.call("POST", "/api/v1/sites", { domain: SITE, timezone: "UTC" });
  assert.equal(added.status, 201, added.text);
  await ingest(srv, added.json.short_id);

  const today = dayStr(new Date());
  const r30 = [addDays(today, -29), today];
  const r7 = [addDays(today, -6), today];

  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 60000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const problems = [];
  const watch = (page, name) => {
    page.on("pageerror", (e) => problems.push(`${name}: ${e.message}`));
    page.on("console", (m) => {
      // 401/403/404 answers that the test provokes on purpose are logged by
      // Chromium as failed resource loads; anything else is a problem.
      if (m.type() === "error" && !/status of 40[134]/.test(m.text())) problems.push(`${name}: ${m.text()}`);
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(srv.base) && !r.url().startsWith("data:")) problems.push(`${name}: external request ${r.url()}`);
    });
  };

  // ------------------------------------------------------------- login --
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page, "dashboard");
  await page.goto(`${srv.base}/dashboard?site=${SITE}&period=30d`);
  assert.match(page.url(), /\/dashboard\/login\?next=/);
  await page.fill("#token", "adm_wrong_token_0000000000");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.equal(wrong.status(), 401);
  assert.match(await page.textContent(".error"), /Wrong token/);
  assert.equal((await ctx.cookies()).length, 0, "no cookie after a wrong token");
  await page.fill("#token", ADMIN_TOKEN);
  await Promise.all([page.waitForURL(/\/dashboard\?/), page.click("button[type=submit]")]);
  const cookie = (await ctx.cookies()).find((c) => c.name === "analytics_session");
  assert.ok(cookie, "session cookie set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.match(page.url(), /site=dash\.test/);
  assert.match(page.url(), /period=30d/);
  let gen = await ready(page);

  // ----------------------------------------------- numbers = the API's --
  assert.deepEqual(await cards(page), await apiCards(srv, r30));
  const visitors30 = (await cards(page))[0][1];
  assert.equal(visitors30, 8, "7 visitors of /api/track and 1 of Swetrix");
  assert.deepEqual(await panelRows(page, "pages"), await apiRows(srv, r30, "event:page", ["visitors", "pageviews"]));
  assert.deepEqual((await panelRows(page, "pages"))[0], ["/", 3, 3]);
  assert.deepEqual(await panelRows(page, "sources"), await apiRows(srv, r30, "visit:source", ["visitors"]));
  assert.deepEqual(await panelRows(page, "locations"), await apiRows(srv, r30, "visit:country", ["visitors"]));
  assert.deepEqual(await panelRows(page, "devices"), await apiRows(srv, r30, "visit:browser", ["visitors"]));
  assert.deepEqual(await panelRows(page, "events"), await apiRows(srv, r30, "event:name", ["visitors", "events"],
    [["is_not", "event:name", ["pageview", "engagement", "perf", "error"]]]));
  assert.deepEqual((await panelRows(page, "events")).map((r) => r[0]), ["Signup"]);
  assert.deepEqual(await panelRows(page, "errors"), await apiRows(srv, r30, "event:props:name", ["events", "visitors"],
    [["is", "event:name", ["error"]]]));
  assert.deepEqual((await panelRows(page, "errors"))[0], ["TypeError", 2, 1]);
  assert.equal(await page.$eval("#panel-perf tr[data-key=page_load] td[data-raw]", (e) => e.dataset.raw), "800");
  assert.equal(await page.$eval(`#panel-perf tr[data-page="/swetrix"] td[data-raw]`, (e) => e.dataset.raw), "800");
  // Other tabs: entry pages, UTM campaign.
  await page.click("#panel-pages [data-tab=entry_page]");
  await page.waitForFunction(() => document.querySelector("#panel-pages .cols span")?.textContent === "Entry page");
  await page.waitForSelector("#panel-pages .row");
  assert.deepEqual(await panelRows(page, "pages"), await apiRows(srv, r30, "visit:entry_page", ["visitors", "visits"]));
  await page.click("#panel-sources [data-tab=utm_campaign]");
  await page.waitForFunction(() => document.querySelector("#panel-sources .row")?.dataset.value === "launch");
  await page.click("#panel-sources [data-tab=source]");
  await page.waitForFunction(() => document.querySelector("#panel-sources .cols span")?.textContent === "Source");
  await page.click("#panel-pages [data-tab=page]");
  await page.waitForFunction(() => document.querySelector("#panel-pages .cols span")?.textContent === "Page");
  // Live visitors equal the realtime API.
  const live = await (await fetch(`${srv.base}/api/v1/stats/realtime/visitors?site_id=${SITE}`,
    { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  await page.waitForFunction((n) => document.querySelector("#live")?.dataset.raw === String(n), live);
  // The graph: one point per day of the range, today's value = the API's.
  const points = await page.$$eval("#graph .dot", (ds) => ds.map((d) => [d.dataset.label, Number(d.dataset.value)]));
  assert.equal(points.length, 30);
  const series = await srv.query({ date_range: r30, metrics: ["visitors"], dimensions: ["time:day"] });
  for (const row of series.results) {
    assert.deepEqual(points.find((p) => p[0] === row.dimensions[0]), [row.dimensions[0], row.metrics[0]]);
  }
  // Details: more than 10 pages, searchable, keyboard-closable.
  await page.click("#panel-pages .more");
  await page.waitForSelector("#details[open] .row");
  const detailRows = () => page.$$eval("#details-body .row", (rows) => rows.map((r) =>
    [r.dataset.value, ...[...r.querySelectorAll(".nums [data-raw]")].map((n) => Number(n.dataset.raw))]));
  const all = await srv.query({ date_range: r30, metrics: ["visitors", "pageviews"], dimensions: ["event:page"],
    order_by: [["visitors", "desc"]], pagination: { limit: 100 } });
  assert.equal(all.results.length, 17);
  assert.deepEqual(await detailRows(), all.results.map((x) => [x.dimensions[0], ...x.metrics]));
  await page.fill("#details-search", "POST-1");
  await page.waitForFunction(() => document.querySelectorAll("#details-body .row").length === 4);
  assert.deepEqual((await detailRows()).map((r) => r[0]).sort(),
    ["/blog/post-1", "/blog/post-10", "/blog/post-11", "/blog/post-12"]);
  // Escape clears the search field first, then closes the dialog.
  await page.keyboard.press("Escape");
  if (await page.evaluate(() => document.querySelector("#details").open)) await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.querySelector("#details").open);
  fs.mkdirSync(out, { recursive: true });
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  const desktopShot = path.join(out, "dashboard_desktop.png");
  await page.screenshot({ path: desktopShot, fullPage: true });

  // ------------------------------------------------- click filters all --
  await page.click(`#panel-pages .row[data-value="/pricing"]`);
  gen = await ready(page, gen);
  assert.equal(new URL(page.url()).searchParams.get("page"), "/pricing");
  const pricing = [["is", "event:page", ["/pricing"]]];
  const filtered = await apiCards(srv, r30, pricing);
  assert.deepEqual(await cards(page), filtered);
  assert.notDeepEqual(filtered, await apiCards(srv, r30), "the filter changes the numbers");
  assert.deepEqual(await panelRows(page, "sources"), await apiRows(srv, r30, "visit:source", ["visitors"], pricing));
  assert.match(await page.textContent("#filters"), /Page is \/pricing/);

  // ---------------------------------------------------- period changes --
  await page.selectOption("#period", "7d");
  gen = await ready(page, gen);
  assert.equal(new URL(page.url()).searchParams.get("period"), "7d");
  assert.equal(new URL(page.url()).searchParams.get("page"), "/pricing", "the filter stays");
  assert.deepEqual(await cards(page), await apiCards(srv, r7, pricing));
  await page.selectOption("#period", "day");
  gen = await ready(page, gen);
  assert.equal(new URL(page.url()).searchParams.get("period"), "day");
  assert.deepEqual(await cards(page), await apiCards(srv, [today, today], pricing));
  assert.equal(await page.$$eval("#graph .dot", (d) => d.length), 24, "hourly graph for one day");
  // Remove the filter with the keyboard (focus the chip's button).
  await page.focus("#filters .chip button");
  await page.keyboard.press("Enter");
  gen = await ready(page, gen);
  assert.equal(new URL(page.url()).searchParams.get("page"), null);
  assert.deepEqual(await cards(page), await apiCards(srv, [today, today]));
  // A bookmarked URL restores the view.
  await page.goto(`${srv.base}/dashboard?site=${SITE}&period=30d&country=DE&metric=pageviews`);
  gen = await ready(page);
  assert.deepEqual(await cards(page), await apiCards(srv, r30, [["is", "visit:country", ["DE"]]]));
  assert.equal(await page.getAttribute(".card[data-metric=pageviews]", "aria-pressed"), "true");
  assert.equal(await page.textContent("#graph-title"), "Pageviews");
  // Custom range through the URL, then back in history.
  await page.goto(`${srv.base}/dashboard?site=${SITE}&period=custom&from=${addDays(today, -3)}&to=${addDays(today, -3)}`);
  gen = await ready(page);
  assert.deepEqual(await cards(page), await apiCards(srv, [addDays(today, -3), addDays(today, -3)]));
  assert.equal((await cards(page))[0][1], 2, "the two visitors of three days ago");

  // ---------------------------------------------------------- phone --
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
    storageState: await ctx.storageState() });
  const p2 = await phone.newPage();
  watch(p2, "phone");
  await p2.goto(`${srv.base}/dashboard?site=${SITE}&period=30d`);
  await ready(p2);
  assert.deepEqual(await cards(p2), await apiCards(srv, r30));
  const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - 390);
  assert.ok(overflow <= 1, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
  const phoneShot = path.join(out, "dashboard_phone.png");
  await p2.screenshot({ path: phoneShot, fullPage: true });
  await phone.close();
  for (const shot of [desktopShot, phoneShot]) {
    assert.ok(fs.statSync(shot).size > 10000, `screenshot ${shot} is too small`);
  }

  // --------------------------------------------------- shared links --
  // Created in the dashboard's Share dialog (cookie-authenticated API).
  await page.goto(`${srv.base}/dashboard?site=${SITE}&period=30d`);
  gen = await ready(page);
  await page.click("#share-open");
  await page.fill("#share-name", "team wiki");
  await page.click("#share-create button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("#share-new").hidden);
  const link = (await page.textContent("#share-new")).match(/(\/share\/shr_[0-9a-f]+)/);
  assert.ok(link, await page.textContent("#share-new"));
  const listed = await srv.call("GET", `/api/v1/shares?site=${SITE}`);
  assert.equal(listed.json.length, 1, listed.text);
  assert.equal(listed.json[0].name, "team wiki");
  const share = { json: { path: link[1], token: link[1].slice(7), id: listed.json[0].id } };
  await page.waitForSelector(`#share-list li[data-id="${share.json.id}"]`);
  const anon = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p3 = await anon.newPage();
  watch(p3, "share");
  const resp = await p3.goto(`${srv.base}${share.json.path}?period=30d`);
  assert.equal(resp.status(), 200);
  await ready(p3);
  assert.deepEqual(await cards(p3), await apiCards(srv, r30));
  assert.deepEqual(await panelRows(p3, "pages"), await apiRows(srv, r30, "event:page", ["visitors", "pageviews"]));
  assert.equal(await p3.isVisible("#logout"), false, "no logout on a shared view");
  assert.equal((await anon.cookies()).length, 0, "a shared view needs no cookie");
  // The share token reads only: no management through it.
  const mgmt = await p3.evaluate(async (tok) => (await fetch("/api/v1/shares", { headers: { "X-Analytics-Share": tok } })).status,
    share.json.token);
  assert.equal(mgmt, 403);
  // Revoked in the dashboard's dialog.
  await page.click(`#share-list li[data-id="${share.json.id}"] button`);
  await page.waitForFunction(() => !document.querySelector("#share-list li[data-id]"));
  assert.deepEqual((await srv.call("GET", "/api/v1/shares")).json, []);
  await page.keyboard.press("Escape");
  const again = await p3.goto(`${srv.base}${share.json.path}?period=30d`);
  assert.equal(again.status(), 404);
  assert.equal(await p3.$$eval(".card", (c) => c.length), 0, "no numbers once revoked");
  const q = await p3.evaluate(async ([tok, site]) => (await fetch("/api/v2/query", {
    method: "POST", headers: { "X-Analytics-Share": tok, "Content-Type": "application/json" },
    body: JSON.stringify({ site_id: site, metrics: ["visitors"], date_range: "30d" }) })).status, [share.json.token, SITE]);
  assert.equal(q, 401);
  await anon.close();

  // ---------------------------------------------------------- logout --
  await page.goto(`${srv.base}/dashboard?site=${SITE}`);
  await ready(page);
  await Promise.all([page.waitForURL(/\/dashboard\/login/), page.click("#logout button")]);
  assert.equal((await ctx.cookies()).filter((c) => c.name === "analytics_session").length, 0);
  await page.goto(`${srv.base}/dashboard`);
  assert.match(page.url(), /\/dashboard\/login/);
  await ctx.close();

  assert.deepEqual(problems, []);
  t.diagnostic(`screenshots: ${desktopShot} ${phoneShot}`);
  assert.equal(await srv.stop(), 0, `analyticsd did not stop cleanly:\n${srv.log}`);
});
