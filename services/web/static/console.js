// The console's own script (no build step): the viewer's time zone for the server,
// ticking durations, and the live-connection indicator. htmx does the rest.
(function () {
  "use strict";
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; samesite=strict; max-age=31536000";
  } catch (e) { /* no Intl: times stay in UTC */ }

  function span(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m) return m + "m";
    return s + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(at)) el.textContent = span((now - at) / 1000);
    });
  }
  setInterval(tick, 1000);

  function live(text, state) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; el.className = "live-status " + state; }
    document.body.setAttribute("data-live", state);
  }
  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.detail && e.detail.type === "live") live("● live", "connected");
  });
  // A live refresh may have been asked for before a command's own answer arrived: never let
  // it put back an older state, nor replace the command forms (and what is typed in them)
  // when the commands on offer are the same.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var target = e.detail.target, incoming = e.detail.fragment && e.detail.fragment.firstElementChild;
    if (!target || !incoming) return;
    var was = parseInt(target.getAttribute("data-version"), 10), now = parseInt(incoming.getAttribute("data-version"), 10);
    if (now < was) { e.detail.shouldSwap = false; return; }
    if (target.id === "incident-actions") {
      var shown = document.getElementById("offers-key"), offered = e.detail.fragment.querySelector("#offers-key");
      if (shown && offered && shown.value === offered.value) e.detail.shouldSwap = false;
    }
  });
  document.addEventListener("htmx:sseError", function () { live("○ reconnecting", "reconnecting"); });
})();
