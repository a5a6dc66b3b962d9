/* analyticsd tracker. <script defer data-domain="example.com" src="https://stats.example.com/js/script.js"></script>
 Options: data-api (default: this script's origin + /api/event), data-allow-localhost.
 No cookies, no storage. POSTs Plausible bodies as text/plain (sendBeacon, else fetch keepalive):
 pageview   {n:"pageview",u,d,r,w} on load and SPA navigation (path change only)
 custom     {n,u,d,r,w,p} via analytics("Signup",{props:{plan:"pro"}}); calls queued in analytics.q before load
 links      "Outbound Link: Click" / "File Download" with p:{url}
 engagement {n:"engagement",u,d,i:false,e:engaged ms since last,sd:max scroll %} every 30 s while visible, and on hide/pagehide/navigation */
(function (w, d) {
  "use strict";
  var s = d.currentScript, l = w.location, n = w.navigator;
  if (!s) return;
  var api = s.getAttribute("data-api") || new URL(s.src).origin + "/api/event";
  var dom = s.getAttribute("data-domain") || l.hostname;
  var off = !s.hasAttribute("data-allow-localhost") &&
    (/^(localhost|127(\.\d+){3}|\[::1?\])$/.test(l.hostname) || l.protocol == "file:");
  var page, t0 = 0, ms = 0, sd = 0;

  function post(b) {
    if (off) return;
    b.d = dom; b.u = b.u || l.href;
    var j = JSON.stringify(b);
    if (!(n.sendBeacon && n.sendBeacon(api, new Blob([j], { type: "text/plain" })))) {
      w.fetch && fetch(api, { method: "POST", body: j, keepalive: true,
        headers: { "Content-Type": "text/plain" } }).catch(function () {});
    }
  }
  function track(name, o) {
    var b = { n: name, r: d.referrer || null, w: w.innerWidth };
    if (o && o.props) b.p = o.props;
    post(b);
  }
  function vis() { return d.visibilityState == "visible"; }
  function scroll() {
    var e = d.documentElement, h = Math.max(e.scrollHeight, d.body ? d.body.scrollHeight : 0);
    var p = h ? Math.min(100, Math.round((w.scrollY + w.innerHeight) / h * 100)) : 0;
    if (p > sd) sd = p;
  }
  // Engaged time since the last engagement event; sent if any.
  function engage() {
    var now = Date.now();
    if (t0) { ms += now - t0; t0 = vis() ? now : 0; }
    if (page && ms > 0) {
      scroll();
      post({ n: "engagement", u: page, i: false, e: ms, sd: sd });
    }
    ms = 0;
  }
  function pageview() {
    var u = l.href, p = l.pathname;
    if (page && new URL(page).pathname == p) return;
    if (page) engage();
    page = u; sd = 0; ms = 0; t0 = vis() ? Date.now() : 0;
    track("pageview");
  }

  var h = w.history;
  ["pushState", "replaceState"].forEach(function (k) {
    var f = h[k];
    if (f) h[k] = function () { var r = f.apply(this, arguments); pageview(); return r; };
  });
  w.addEventListener("popstate", pageview);
  w.addEventListener("scroll", scroll, { passive: true });
  d.addEventListener("visibilitychange", function () {
    if (vis()) t0 = Date.now(); else engage();
  });
  w.addEventListener("pagehide", engage);
  setInterval(function () { if (vis()) engage(); }, 30000);

  var ext = /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pps|pptx?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi)$/i;
  function click(e) {
    if (e.type == "auxclick" && e.button != 1) return;
    var a = e.target && e.target.closest && e.target.closest("a[href]");
    if (!a || !/^https?:$/.test(a.protocol)) return;
    var u = a.href.split(/[?#]/)[0];
    if (ext.test(a.pathname)) track("File Download", { props: { url: u } });
    else if (a.host != l.host) track("Outbound Link: Click", { props: { url: a.href } });
  }
  d.addEventListener("click", click, true);
  d.addEventListener("auxclick", click, true);

  var q = (w.analytics && w.analytics.q) || [];
  w.analytics = track;
  pageview();
  for (var i = 0; i < q.length; i++) track.apply(null, q[i]);
})(window, document);
