/* Gantry's page behaviour. Loaded from /static (the CSP allows no inline script). */
(function () {
  "use strict";

  // (a) The browser's time zone, so the server renders times in it (UserTimezoneMiddleware).
  // IANA names ("Asia/Seoul", "Etc/GMT+5") are valid cookie values as they are.
  function rememberTimeZone() {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return;
    }
    if (!/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      return;
    }
    var current = document.cookie.split("; ").filter(function (c) {
      return c.indexOf("gantry_tz=") === 0;
    })[0];
    if (current !== "gantry_tz=" + zone) {
      var secure = window.location.protocol === "https:" ? "; Secure" : "";
      document.cookie = "gantry_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax" + secure;
    }
  }

  // (b) Destructive actions: <form data-confirm="Delete X?"> asks before submitting.
  function confirmDestructive(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }

  // (c) htmx requests carry the CSRF token from <meta name="csrf-token">.
  function addCsrfHeader(event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && event.detail && event.detail.headers) {
      event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
    }
  }

  // (d) Live fragments (portal/live.py): a poll says which version it shows, and a 304 ("nothing
  // changed") leaves the page alone, so scroll, focus and typed input stay. htmx 2 would otherwise
  // swap the empty body of a 304.
  function sendLiveVersion(event) {
    var elt = event.detail && event.detail.elt;
    var version = elt && elt.getAttribute && elt.getAttribute("data-live-version");
    if (version && event.detail.headers) {
      event.detail.headers["If-None-Match"] = '"' + version + '"';
      event.detail.headers["X-Gantry-Live"] = "1";
    }
  }

  function keepPageOnNotModified(event) {
    if (event.detail && event.detail.xhr && event.detail.xhr.status === 304) {
      event.detail.shouldSwap = false;
      event.detail.isError = false;
    }
  }

  // (e) On a narrow screen the navigation folds behind a Menu button (without this script it stays
  // one row that scrolls sideways in its own box).
  function foldNavigation() {
    var bar = document.querySelector(".topbar");
    var button = bar && bar.querySelector(".nav-toggle");
    if (!button) {
      return;
    }
    bar.classList.add("js-nav");
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = bar.classList.toggle("nav-open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  rememberTimeZone();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", foldNavigation);
  } else {
    foldNavigation();
  }
  document.addEventListener("submit", confirmDestructive, true);
  document.addEventListener("htmx:configRequest", addCsrfHeader);
  document.addEventListener("htmx:configRequest", sendLiveVersion);
  document.addEventListener("htmx:beforeSwap", keepPageOnNotModified);
})();
