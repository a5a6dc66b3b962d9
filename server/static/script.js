// Placeholder tracker: sends one pageview to /api/event (Plausible format).
// <script defer data-domain="example.com" src="https://stats.example.com/js/script.js"></script>
(function () {
  "use strict";
  var s = document.currentScript;
  if (!s) return;
  var endpoint = s.getAttribute("data-api") || new URL(s.src).origin + "/api/event";
  var domain = s.getAttribute("data-domain") || location.hostname;
  function send(name) {
    var body = JSON.stringify({
      n: name, u: location.href, d: domain,
      r: document.referrer || null, w: window.innerWidth
    });
    if (navigator.sendBeacon) {
      navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }));
    } else {
      fetch(endpoint, { method: "POST", body: body, keepalive: true,
                        headers: { "Content-Type": "text/plain" } });
    }
  }
  send("pageview");
})();
