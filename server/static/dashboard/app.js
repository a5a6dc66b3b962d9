// analyticsd dashboard: plain browser JavaScript, no build step, no external
// requests. Every number comes from the public Stats API (/api/v2/query and
// /api/v1/stats/realtime/visitors); this file only asks and draws.
//
// The view lives in the URL (site, period, comparison, graph metric and
// interval, filters), so any view can be bookmarked. Under /share/<token> the
// same app runs read-only for one site, authenticated by the link's token.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SHARE = location.pathname.startsWith("/share/")
    ? decodeURIComponent(location.pathname.split("/")[2] || "") : "";

  // ------------------------------------------------------------- model --
  // Filterable dimensions: URL name -> [API dimension, label].
  const DIMS = {
    page: ["event:page", "Page"],
    entry_page: ["visit:entry_page", "Entry page"],
    exit_page: ["visit:exit_page", "Exit page"],
    source: ["visit:source", "Source"],
    referrer: ["visit:referrer", "Referrer"],
    utm_medium: ["visit:utm_medium", "UTM medium"],
    utm_source: ["visit:utm_source", "UTM source"],
    utm_campaign: ["visit:utm_campaign", "UTM campaign"],
    country: ["visit:country", "Country"],
    browser: ["visit:browser", "Browser"],
    os: ["visit:os", "OS"],
    device: ["visit:device", "Device"],
    screen: ["visit:screen", "Screen size"],
    goal: ["event:name", "Event"],
  };
  const dimOf = (key) => key.startsWith("props.")
    ? ["event:props:" + key.slice(6), "Property " + key.slice(6)] : DIMS[key];

  const METRICS = [
    ["visitors", "Unique visitors"],
    ["visits", "Total visits"],
    ["pageviews", "Total pageviews"],
    ["views_per_visit", "Views per visit"],
    ["bounce_rate", "Bounce rate"],
    ["visit_duration", "Visit duration"],
  ];
  const GRAPHABLE = ["visitors", "visits", "pageviews", "views_per_visit",
    "bounce_rate", "visit_duration"];
  const NOT_CUSTOM = ["pageview", "engagement", "perf", "error"];
  const PERF_KEYS = [["ttfb", "Time to first byte"], ["dns", "DNS"],
    ["tls", "TLS"], ["conn", "Connection"], ["response", "Response"],
    ["render", "Render"], ["dom_load", "DOM loaded"], ["page_load", "Page loaded"]];

  const tab = (key, label, metrics, extra = {}) =>
    ({ key, label, dim: dimOf(key)[0], metrics, ...extra });
  const V = ["visitors"];
  const PANELS = [
    { id: "pages", tabs: [
      tab("page", "Top pages", ["visitors", "pageviews"]),
      tab("entry_page", "Entry pages", ["visitors", "visits"]),
      tab("exit_page", "Exit pages", ["visitors", "visits"])] },
    { id: "sources", tabs: [
      tab("source", "Sources", V), tab("referrer", "Referrers", V),
      tab("utm_medium", "UTM medium", V), tab("utm_source", "UTM source", V),
      tab("utm_campaign", "UTM campaign", V)] },
    { id: "locations", tabs: [tab("country", "Countries", V)] },
    { id: "devices", tabs: [
      tab("browser", "Browsers", V), tab("os", "Operating systems", V),
      tab("device", "Devices", V), tab("screen", "Screen sizes", V)] },
    { id: "events", tabs: [
      tab("goal", "Custom events", ["visitors", "events"],
        { only: [["is_not", "event:name", NOT_CUSTOM]] }),
      { key: "props", label: "Properties", props: true, metrics: ["visitors", "events"] }] },
    { id: "errors", hideEmpty: true, tabs: [
      tab("props.name", "Errors", ["events", "visitors"],
        { only: [["is", "event:name", ["error"]]], alsoFilter: [["goal", "error"]], column: "Error" }),
      tab("props.message", "Error messages", ["events", "visitors"],
        { only: [["is", "event:name", ["error"]]], alsoFilter: [["goal", "error"]], column: "Message" })] },
    { id: "perf", hideEmpty: true, perf: true, tabs: [{ key: "perf", label: "Page performance" }] },
  ];
  const METRIC_LABEL = { visitors: "Visitors", visits: "Visits", pageviews: "Pageviews",
    events: "Events", views_per_visit: "Views per visit", bounce_rate: "Bounce rate",
    visit_duration: "Visit duration" };

  // ------------------------------------------------------------ state --
  let state = {};
  let session = { kind: "", sites: [] };
  const tabOf = {};  // panel id -> selected tab key
  let generation = 0;

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const filters = [];
    for (const [k, v] of q) {
      if (DIMS[k] || (k.startsWith("props.") && k.length > 6)) filters.push([k, v]);
    }
    state = {
      site: q.get("site") || "",
      period: q.get("period") || "30d",
      from: q.get("from") || "",
      to: q.get("to") || "",
      compare: q.get("compare") !== "off",
      metric: GRAPHABLE.includes(q.get("metric")) ? q.get("metric") : "visitors",
      interval: q.get("interval") || "",
      prop: q.get("prop") || "",
      filters,
    };
  }

  function writeUrl(push) {
    const q = new URLSearchParams();
    if (state.site) q.set("site", state.site);
    q.set("period", state.period);
    if (state.period === "custom") { q.set("from", state.from); q.set("to", state.to); }
    if (!state.compare) q.set("compare", "off");
    if (state.metric !== "visitors") q.set("metric", state.metric);
    if (state.interval) q.set("interval", state.interval);
    if (state.prop) q.set("prop", state.prop);
    for (const [k, v] of state.filters) q.append(k, v);
    const url = location.pathname + "?" + q.toString();
    if (url !== location.pathname + location.search) {
      history[push ? "pushState" : "replaceState"](null, "", url);
    }
  }

  function change(update, push = true) {
    Object.assign(state, update);
    writeUrl(push);
    load();
  }

  // -------------------------------------------------------------- API --
  async function api(path, body, method) {
    const headers = SHARE ? { "X-Analytics-Share": SHARE } : { "X-Analytics-Dashboard": "1" };
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, {
      method: method || (body ? "POST" : "GET"), headers, credentials: "same-origin", cache: "no-store",
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    if (r.status === 401 && !SHARE) {
      location.assign("/dashboard/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("not logged in");
    }
    if (!r.ok) {
      const e = new Error((json && json.error) || `HTTP ${r.status}`);
      e.status = r.status;
      throw e;
    }
    return json;
  }

  const site = () => session.sites.find((s) => s.domain === state.site) || session.sites[0];

  function apiFilters(extra = []) {
    return [...state.filters.map(([k, v]) => ["is", dimOf(k)[0], [v]]), ...extra];
  }

  function query(body) {
    return api("/api/v2/query", { site_id: state.site, date_range: range(), filters: apiFilters(), ...body });
  }

  // ------------------------------------------------------------ dates --
  // Civil dates as "YYYY-MM-DD", computed in the site's time zone.
  function todayIn(tz) {
    try {
      return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
    } catch {
      return new Date().toISOString().slice(0, 10);
    }
  }
  const toDate = (s) => new Date(s + "T00:00:00Z");
  const fmt = (d) => d.toISOString().slice(0, 10);
  const addDays = (s, n) => { const d = toDate(s); d.setUTCDate(d.getUTCDate() + n); return fmt(d); };
  const monthStart = (s, back = 0) => { const d = toDate(s); d.setUTCDate(1); d.setUTCMonth(d.getUTCMonth() - back); return fmt(d); };
  const monthEnd = (s) => { const d = toDate(monthStart(s)); d.setUTCMonth(d.getUTCMonth() + 1); d.setUTCDate(0); return fmt(d); };
  const days = (a, b) => Math.round((toDate(b) - toDate(a)) / 86400000) + 1;

  function range() {
    const t = todayIn(site() ? site().timezone : "UTC");
    switch (state.period) {
      case "day": return [t, t];
      case "yesterday": return [addDays(t, -1), addDays(t, -1)];
      case "7d": return [addDays(t, -6), t];
      case "month": return [monthStart(t), monthEnd(t)];
      case "lastmonth": { const m = monthStart(t, 1); return [m, monthEnd(m)]; }
      case "6mo": return [monthStart(t, 5), monthEnd(t)];
      case "12mo": return [monthStart(t, 11), monthEnd(t)];
      case "custom":
        if (/^\d{4}-\d\d-\d\d$/.test(state.from) && /^\d{4}-\d\d-\d\d$/.test(state.to) && state.from <= state.to) {
          return [state.from, state.to];
        }
        return [addDays(t, -29), t];
      default: return [addDays(t, -29), t];
    }
  }

  function intervals() {
    const [f, t] = range();
    const n = days(f, t);
    if (n <= 1) return ["hour"];
    if (n <= 14) return ["hour", "day"];
    if (n <= 62) return ["day", "week"];
    return ["day", "week", "month"];
  }
  function interval() {
    const all = intervals();
    if (all.includes(state.interval)) return state.interval;
    const [f, t] = range();
    const n = days(f, t);
    return n <= 1 ? "hour" : n <= 62 ? "day" : "month";
  }

  // Bucket labels the API uses for the range (see query/execute.cc).
  function buckets(from, to, grain) {
    const out = [];
    if (grain === "hour") {
      for (let d = from; d <= to; d = addDays(d, 1)) {
        for (let h = 0; h < 24; h++) out.push(`${d} ${String(h).padStart(2, "0")}:00:00`);
      }
    } else if (grain === "day") {
      for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
    } else if (grain === "week") {
      out.push(from);
      let d = addDays(from, 1);
      for (; d <= to; d = addDays(d, 1)) if (toDate(d).getUTCDay() === 1) out.push(d);
    } else {
      for (let m = monthStart(from); m <= to; m = monthStart(addDays(monthEnd(m), 1))) out.push(m);
    }
    return out;
  }

  // ------------------------------------------------------- formatting --
  function formatMetric(metric, v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (metric === "bounce_rate") return `${Math.round(v)}%`;
    if (metric === "visit_duration") {
      const s = Math.round(v);
      if (s < 60) return `${s}s`;
      const m = Math.floor(s / 60);
      return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
    }
    if (metric === "views_per_visit") return (Math.round(v * 100) / 100).toString();
    if (Math.abs(v) >= 10000) {
      return new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 }).format(v);
    }
    return Math.round(v).toLocaleString("en");
  }

  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs = {}, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function showError(e) {
    const box = $("error");
    box.textContent = e ? `Could not load: ${e.message}` : "";
    box.hidden = !e;
  }

  // ---------------------------------------------------------- filters --
  function addFilter(key, value, also = []) {
    const filters = state.filters.filter(([k]) => k !== key && !also.some(([a]) => a === k));
    filters.push(...also, [key, value]);
    change({ filters });
  }

  function renderFilters() {
    const box = $("filters");
    box.replaceChildren();
    for (const [k, v] of state.filters) {
      const label = `${dimOf(k)[1]} is ${v}`;
      box.append(el("span", { class: "chip", role: "listitem", "data-filter": k },
        el("span", { text: label }),
        el("button", { type: "button", "aria-label": `Remove filter ${label}`, text: "✕",
          onclick: () => change({ filters: state.filters.filter(([fk]) => fk !== k) }) })));
    }
  }

  // ------------------------------------------------------------ cards --
  function renderCards(result) {
    const row = (result && result.results[0]) || { metrics: [] };
    const box = $("cards");
    box.replaceChildren();
    METRICS.forEach(([m, label], i) => {
      const v = row.metrics[i];
      const ch = row.comparison ? row.comparison.change[i] : null;
      let change = null;
      if (ch !== null && ch !== undefined) {
        const better = m === "bounce_rate" ? ch < 0 : ch > 0;
        const unit = m === "bounce_rate" ? " pts" : "%";
        change = el("span", { class: `change ${ch === 0 ? "" : better ? "good" : "bad"}`,
          text: `${ch > 0 ? "↑" : ch < 0 ? "↓" : "→"} ${Math.abs(ch)}${unit}`,
          title: `vs. ${formatMetric(m, row.comparison.metrics[i])} in the previous period` });
      }
      box.append(el("button", { type: "button", class: "card", "data-metric": m,
        "aria-pressed": String(state.metric === m), onclick: () => change({ metric: m }) },
        el("span", { class: "label", text: label }),
        el("span", { class: "value", "data-raw": String(v ?? ""), text: formatMetric(m, v) }),
        change));
    });
  }

  // ------------------------------------------------------------ graph --
  function renderGraph(grain, rows, prevRows) {
    const [from, to] = range();
    const labels = buckets(from, to, grain);
    const byLabel = new Map(rows.map((r) => [r.dimensions[0], r.metrics[0]]));
    const values = labels.map((l) => byLabel.get(l) ?? 0);
    let prev = null;
    if (prevRows) {
      const pl = prevRows.labels;
      const pm = new Map(prevRows.rows.map((r) => [r.dimensions[0], r.metrics[0]]));
      prev = labels.map((_, i) => (i < pl.length ? pm.get(pl[i]) ?? 0 : null));
    }
    const box = $("graph");
    box.replaceChildren();
    const W = Math.max(300, box.clientWidth || 800), H = 260, L = 44, R = 10, T = 10, B = 28;
    const max = Math.max(1, ...values, ...(prev || []).filter((v) => v !== null));
    const step = niceStep(max / 4);
    const top = Math.ceil(max / step) * step;
    const x = (i) => L + (labels.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (labels.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", preserveAspectRatio: "none",
      "aria-label": `${METRIC_LABEL[state.metric]} by ${grain}, ${labels.length} points, highest ${formatMetric(state.metric, Math.max(...values))}` });
    for (let v = 0; v <= top + 1e-9; v += step) {
      root.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      root.append(svg("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, formatMetric(state.metric, v)));
    }
    const every = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor((W - L) / 80))));
    labels.forEach((l, i) => {
      if (i % every) return;
      root.append(svg("text", { class: "axis", x: x(i), y: H - 8, "text-anchor": "middle" }, shortLabel(l, grain)));
    });
    const path = (vals) => vals.map((v, i) => (v === null ? "" : `${i && vals[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`)).join("");
    if (prev) root.append(svg("path", { class: "prev", d: path(prev) }));
    if (values.length > 1) {
      root.append(svg("path", { class: "area", d: `${path(values)}L${x(values.length - 1)},${y(0)}L${x(0)},${y(0)}Z` }));
    }
    root.append(svg("path", { class: "line", d: path(values) }));
    labels.forEach((l, i) => {
      const text = `${longLabel(l, grain)}: ${formatMetric(state.metric, values[i])}` +
        (prev && prev[i] !== null ? ` (previous period ${formatMetric(state.metric, prev[i])})` : "");
      const dot = svg("circle", { class: "dot", cx: x(i), cy: y(values[i]), r: 4.5, tabindex: i === values.length - 1 ? 0 : -1, "data-label": l, "data-value": values[i] });
      dot.append(svg("title", {}, text));
      dot.addEventListener("focus", () => { $("graph-tip").textContent = text; });
      dot.addEventListener("mouseenter", () => { $("graph-tip").textContent = text; });
      dot.addEventListener("keydown", (ev) => {
        const d = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
        if (!d) return;
        ev.preventDefault();
        const next = root.querySelectorAll(".dot")[i + d];
        if (next) { dot.setAttribute("tabindex", -1); next.setAttribute("tabindex", 0); next.focus(); }
      });
      root.append(dot);
    });
    box.append(root);
    $("graph-title").textContent = METRIC_LABEL[state.metric];
  }
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))));
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return Math.max(m * p, state.metric === "views_per_visit" ? 0.25 : 1);
    return 10 * p;
  }
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function shortLabel(l, grain) {
    if (grain === "hour") return l.slice(11, 16);
    const m = MONTHS[+l.slice(5, 7) - 1];
    return grain === "month" ? `${m} ${l.slice(2, 4)}` : `${+l.slice(8, 10)} ${m}`;
  }
  function longLabel(l, grain) {
    if (grain === "hour") return `${l.slice(0, 10)} ${l.slice(11, 16)}`;
    if (grain === "week") return `Week of ${l}`;
    if (grain === "month") return `${MONTHS[+l.slice(5, 7) - 1]} ${l.slice(0, 4)}`;
    return l;
  }

  // ----------------------------------------------------------- panels --
  function panelTab(p) {
    const key = tabOf[p.id] || p.tabs[0].key;
    return p.tabs.find((t) => t.key === key) || p.tabs[0];
  }

  function breakdownBody(t, limit, offset = 0, search = "") {
    const extra = [...(t.only || [])];
    if (search) extra.push(["contains", t.dim, [search], { case_sensitive: false }]);
    return {
      site_id: state.site, date_range: range(), metrics: t.metrics, dimensions: [t.dim],
      filters: apiFilters(extra), order_by: [[t.metrics[0], "desc"]],
      pagination: { limit, offset }, include: { total_rows: true },
    };
  }

  function rowsList(t, results) {
    const list = el("ul", { class: "rows" });
    const max = Math.max(1, ...results.map((r) => r.metrics[0]));
    const key = t.props ? `props.${state.prop}` : t.key;
    for (const r of results) {
      const name = r.dimensions[0];
      const btn = el("button", { type: "button", class: "row", "data-value": name,
        title: `Filter by ${name}`, onclick: () => { $("details").open && $("details").close(); addFilter(key, name, t.alsoFilter || []); } });
      const fill = el("span", { class: "barfill" });
      fill.style.width = `${(100 * r.metrics[0]) / max}%`;
      btn.append(fill, el("span", { class: "name", text: name }),
        el("span", { class: "nums" }, ...r.metrics.map((v, i) =>
          el("span", { "data-metric": t.metrics[i], "data-raw": String(v), text: formatMetric(t.metrics[i], v) }))));
      list.append(el("li", {}, btn));
    }
    return list;
  }

  function header(t) {
    return el("div", { class: "cols", "aria-hidden": "true" },
      el("span", { text: t.column || dimOf(t.props ? `props.${state.prop || "?"}` : t.key)?.[1] || "" }),
      el("span", {}, ...t.metrics.map((m) => el("span", { text: METRIC_LABEL[m] }))));
  }

  async function renderPanel(p, gen) {
    const box = $(`panel-${p.id}`);
    const t = panelTab(p);
    const body = box.querySelector(".panel-body");
    try {
      if (p.perf) return await renderPerf(p, box, body, gen);
      if (t.props) return await renderProps(p, t, box, body, gen);
      const r = await api("/api/v2/query", breakdownBody(t, 10));
      if (gen !== generation) return;
      if (p.hideEmpty) {
        if (p.tabs.indexOf(t) === 0) box.hidden = r.results.length === 0;
        if (box.hidden) return;
      }
      const kids = [header(t)];
      kids.push(r.results.length ? rowsList(t, r.results) : el("p", { class: "empty", text: "No data yet" }));
      if ((r.meta.total_rows || 0) > 10) {
        kids.push(el("button", { type: "button", class: "ghost more", text: "Details", onclick: () => openDetails(t) }));
      }
      body.replaceChildren(...kids);
    } catch (e) {
      if (gen === generation) body.replaceChildren(el("p", { class: "error", text: e.message }));
    }
  }

  async function renderProps(p, t, box, body, gen) {
    const input = el("input", { id: "prop-key", list: "prop-keys", value: state.prop, placeholder: "property name", "aria-label": "Property name" });
    const list = el("datalist", { id: "prop-keys" }, ...["plan", "url", "path", "method", "author", "variant", "value"].map((v) => el("option", { value: v })));
    const form = el("form", { class: "propkey", onsubmit: (ev) => { ev.preventDefault(); change({ prop: input.value.trim() }); } },
      el("label", { for: "prop-key", text: "Property" }), input, list, el("button", { type: "submit", text: "Show" }));
    if (!state.prop) {
      body.replaceChildren(form, el("p", { class: "empty", text: "Name a property (filter an event first to see only its properties)." }));
      return;
    }
    const tt = { ...t, dim: `event:props:${state.prop}` };
    const r = await api("/api/v2/query", breakdownBody(tt, 10));
    if (gen !== generation) return;
    const kids = [form, header(tt)];
    kids.push(r.results.length ? rowsList(tt, r.results) : el("p", { class: "empty", text: "No events with this property" }));
    if ((r.meta.total_rows || 0) > 10) kids.push(el("button", { type: "button", class: "ghost more", text: "Details", onclick: () => openDetails(tt) }));
    body.replaceChildren(...kids);
  }

  // Swetrix page timings: events named "perf" with a prop per timing (ms).
  // Median and 75th percentile from the breakdown of each timing's values.
  async function renderPerf(p, box, body, gen) {
    const only = [["is", "event:name", ["perf"]]];
    const ask = (dimensions) => api("/api/v2/query", {
      site_id: state.site, date_range: range(), metrics: ["events"], dimensions,
      filters: apiFilters(only), pagination: { limit: 10000 } });
    const [byPage, ...answers] = await Promise.all([ask(["event:page", "event:props:page_load"]),
      ...PERF_KEYS.map(([k]) => ask([`event:props:${k}`]))]);
    if (gen !== generation) return;
    // Value -> count pairs -> the q-quantile.
    const quantile = (vals, q) => {
      const n = vals.reduce((sum, [, c]) => sum + c, 0);
      let seen = 0;
      for (const [v, c] of vals) { seen += c; if (seen >= q * n) return v; }
      return vals[vals.length - 1][0];
    };
    const rows = [];
    PERF_KEYS.forEach(([k, label], i) => {
      const vals = answers[i].results.map((r) => [Number(r.dimensions[0]), r.metrics[0]])
        .filter(([v]) => Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
      const n = vals.reduce((sum, [, c]) => sum + c, 0);
      if (!n) return;
      rows.push([k, label, quantile(vals, 0.5), quantile(vals, 0.75), n]);
    });
    box.hidden = rows.length === 0;
    if (!rows.length) return;
    const table = el("table", { class: "perf" },
      el("thead", {}, el("tr", {}, ...["Timing", "Median", "p75", "Samples"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows.map(([k, label, med, p75, n]) => el("tr", { "data-key": k },
        el("td", { text: label }), el("td", { "data-raw": String(med), text: `${med} ms` }),
        el("td", { text: `${p75} ms` }), el("td", { text: n.toLocaleString("en") })))));
    // Slowest pages by median page load (top 10).
    const pages = new Map();
    for (const r of byPage.results) {
      const v = Number(r.dimensions[1]);
      if (!Number.isFinite(v)) continue;
      if (!pages.has(r.dimensions[0])) pages.set(r.dimensions[0], []);
      pages.get(r.dimensions[0]).push([v, r.metrics[0]]);
    }
    const slow = [...pages].map(([page, vals]) => {
      vals.sort((a, b) => a[0] - b[0]);
      return [page, quantile(vals, 0.5), vals.reduce((sum, [, c]) => sum + c, 0)];
    }).sort((a, b) => b[1] - a[1]).slice(0, 10);
    const perPage = el("table", { class: "perf perf-pages" },
      el("thead", {}, el("tr", {}, ...["Page", "Median page load", "Samples"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...slow.map(([page, med, n]) => el("tr", { "data-page": page },
        el("td", {}, el("button", { type: "button", class: "row", "data-value": page, title: `Filter by ${page}`,
          onclick: () => addFilter("page", page) }, el("span", { class: "name", text: page }))),
        el("td", { "data-raw": String(med), text: `${med} ms` }), el("td", { text: n.toLocaleString("en") })))));
    body.replaceChildren(table, perPage);
  }

  function buildPanels() {
    const root = $("panels");
    root.replaceChildren();
    for (const p of PANELS) {
      const tabs = el("div", { class: "tabs", role: "tablist" });
      const section = el("section", { class: "box panel", id: `panel-${p.id}`, "aria-label": p.tabs[0].label, hidden: p.hideEmpty || false });
      p.tabs.forEach((t) => {
        const selected = panelTab(p).key === t.key;
        tabs.append(el("button", { type: "button", role: "tab", class: "tab", "data-tab": t.key,
          "aria-selected": String(selected), tabindex: selected ? 0 : -1, text: t.label,
          onclick: () => selectTab(p, t.key),
          onkeydown: (ev) => {
            const i = p.tabs.indexOf(t), d = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
            if (!d) return;
            const next = p.tabs[(i + d + p.tabs.length) % p.tabs.length];
            selectTab(p, next.key);
            section.querySelector(`[data-tab="${next.key}"]`).focus();
          } }));
      });
      section.append(el("div", { class: "box-head" }, tabs), el("div", { class: "panel-body", role: "tabpanel" }));
      root.append(section);
    }
  }

  function selectTab(p, key) {
    tabOf[p.id] = key;
    const section = $(`panel-${p.id}`);
    for (const b of section.querySelectorAll(".tab")) {
      const on = b.dataset.tab === key;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    renderPanel(p, generation);
  }

  // ---------------------------------------------------------- details --
  let details = null;
  function openDetails(t) {
    details = { t, offset: 0, search: "" };
    $("details-title").textContent = t.props ? `Property ${state.prop}` : t.label;
    $("details-search").value = "";
    $("details-body").replaceChildren();
    $("details").showModal();
    loadDetails(false);
  }
  async function loadDetails(append) {
    const d = details;
    if (!append) d.offset = 0;
    try {
      const r = await api("/api/v2/query", breakdownBody(d.t, 100, d.offset, d.search));
      if (d !== details) return;
      const list = rowsList(d.t, r.results);
      if (append) $("details-body").append(list);
      else $("details-body").replaceChildren(header(d.t), list);
      d.offset += r.results.length;
      $("details-more").hidden = d.offset >= (r.meta.total_rows || 0);
    } catch (e) {
      $("details-body").replaceChildren(el("p", { class: "error", text: e.message }));
    }
  }

  // ------------------------------------------------------------- live --
  let liveTimer = 0;
  async function refreshLive() {
    clearTimeout(liveTimer);
    if (!state.site) return;
    try {
      const n = await api(`/api/v1/stats/realtime/visitors?site_id=${encodeURIComponent(state.site)}`);
      $("live").textContent = `${n} current visitor${n === 1 ? "" : "s"}`;
      $("live").dataset.raw = String(n);
    } catch {
      $("live").textContent = "";
    }
    liveTimer = setTimeout(refreshLive, 30000);
  }

  // ------------------------------------------------------------ shares --
  async function loadShares() {
    const list = $("share-list");
    try {
      const shares = await api(`/api/v1/shares?site=${encodeURIComponent(state.site)}`);
      list.replaceChildren(...shares.map((s) => el("li", { "data-id": String(s.id) },
        el("span", { text: `${s.name || "Unnamed"} · ${s.prefix}… · ${new Date(s.created_ms).toLocaleDateString("en")}` }),
        el("button", { type: "button", class: "ghost", text: "Revoke", onclick: async () => {
          try {
            await api(`/api/v1/shares/${s.id}`, undefined, "DELETE");
          } catch (err) {
            showError(err);
          }
          loadShares();
        } }))));
      if (!shares.length) list.replaceChildren(el("li", { class: "empty", text: "No shared links yet." }));
    } catch (e) {
      list.replaceChildren(el("li", { class: "error", text: e.message }));
    }
  }

  // ------------------------------------------------------------- load --
  let lastGraph = null;
  async function load() {
    const gen = ++generation;
    document.body.dataset.state = "loading";
    showError(null);
    const s = site();
    if (!s) {
      $("notice").textContent = "No sites yet: add one with the API (POST /api/v1/sites).";
      $("notice").hidden = false;
      document.body.dataset.state = "ready";
      return;
    }
    state.site = s.domain;
    syncControls();
    renderFilters();
    refreshLive();
    const grain = interval();
    const compare = state.compare ? { include: { comparisons: { mode: "previous_period" } } } : {};
    const jobs = [];
    const aggregate = query({ metrics: METRICS.map(([m]) => m), ...compare });
    jobs.push(aggregate.then((r) => { if (gen === generation) renderCards(r); }));
    jobs.push((async () => {
      const series = await query({ metrics: [state.metric], dimensions: [`time:${grain}`] });
      let prev = null;
      if (state.compare) {
        const a = await aggregate;
        const cr = a.meta.comparison_date_range;
        if (cr) {
          const pr = await query({ metrics: [state.metric], dimensions: [`time:${grain}`], date_range: cr });
          prev = { rows: pr.results, labels: buckets(cr[0].slice(0, 10), cr[1].slice(0, 10), grain) };
        }
      }
      if (gen === generation) {
        lastGraph = [grain, series.results, prev];
        renderGraph(...lastGraph);
      }
    })());
    for (const p of PANELS) jobs.push(renderPanel(p, gen));
    const results = await Promise.allSettled(jobs);
    if (gen !== generation) return;
    const failed = results.find((r) => r.status === "rejected");
    showError(failed ? failed.reason : null);
    document.body.dataset.state = "ready";
    document.body.dataset.generation = String(gen);
  }

  function syncControls() {
    const sel = $("site");
    if (sel.options.length !== session.sites.length) {
      sel.replaceChildren(...session.sites.map((x) => el("option", { value: x.domain, text: x.domain })));
    }
    sel.value = state.site;
    sel.disabled = session.sites.length < 2;
    $("period").value = state.period;
    $("custom").hidden = state.period !== "custom";
    if (state.period === "custom") {
      const [f, t] = range();
      $("from").value = f;
      $("to").value = t;
    }
    $("compare").checked = state.compare;
    const iv = $("interval");
    iv.replaceChildren(...intervals().map((g) => el("option", { value: g, text: `By ${g}` })));
    iv.value = interval();
    document.title = `${state.site} · analyticsd`;
  }

  // ------------------------------------------------------------ start --
  async function start() {
    readUrl();
    buildPanels();
    $("site").addEventListener("change", (e) => change({ site: e.target.value, filters: [], prop: "" }));
    $("period").addEventListener("change", (e) => {
      const period = e.target.value;
      if (period === "custom") {
        const [f, t] = range();
        change({ period, from: f, to: t, interval: "" });
      } else {
        change({ period, interval: "" });
      }
    });
    $("custom").addEventListener("submit", (e) => {
      e.preventDefault();
      if ($("from").value && $("to").value && $("from").value <= $("to").value) {
        change({ from: $("from").value, to: $("to").value, interval: "" });
      }
    });
    $("compare").addEventListener("change", (e) => change({ compare: e.target.checked }));
    $("interval").addEventListener("change", (e) => change({ interval: e.target.value }));
    $("details-search").addEventListener("input", (e) => {
      clearTimeout(details?.timer);
      if (details) details.timer = setTimeout(() => { details.search = e.target.value.trim(); loadDetails(false); }, 250);
    });
    $("details-more").addEventListener("click", () => loadDetails(true));
    $("share-open").addEventListener("click", () => {
      $("share-new").hidden = true;
      $("share").showModal();
      loadShares();
    });
    $("share-create").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const s = await api("/api/v1/shares", { site: state.site, name: $("share-name").value });
        $("share-new").textContent = `New link (shown once): ${location.origin}${s.path}`;
        $("share-new").hidden = false;
        $("share-name").value = "";
      } catch (err) {
        $("share-new").textContent = err.message;
        $("share-new").hidden = false;
      }
      loadShares();
    });
    window.addEventListener("popstate", () => { readUrl(); load(); });
    let resizeTimer = 0;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => lastGraph && renderGraph(...lastGraph), 200); });
    try {
      session = await api("/dashboard/api/session");
    } catch (e) {
      showError(SHARE ? new Error("this shared link is not valid or was revoked") : e);
      document.body.dataset.state = "error";
      return;
    }
    if (!SHARE) {
      $("logout").hidden = false;
      $("share-open").hidden = false;
    }
    if (!session.sites.some((s) => s.domain === state.site) && session.sites[0]) {
      state.site = session.sites[0].domain;
    }
    writeUrl(false);
    load();
  }

  start();
})();
