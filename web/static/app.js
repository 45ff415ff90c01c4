// MyT web UI: progressive enhancement only. Every page works without this
// script; it makes a few things react at once.
(function () {
  "use strict";

  // Move focus to an error summary so screen readers announce it.
  var summary = document.querySelector("[data-autofocus]");
  if (summary) summary.focus();

  // Forms that ask for confirmation before a destructive action (also
  // those the job page's live regions bring in later).
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.matches && f.matches("form[data-confirm]") && !window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
  });

  // Copy buttons.
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el || !navigator.clipboard) return;
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      var t = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = t; }, 1500);
    });
  });

  // Radio buttons that show or hide a block (the SSH key choice).
  document.querySelectorAll("input[data-toggle]").forEach(function (r) {
    r.addEventListener("change", function () {
      var el = document.getElementById(r.getAttribute("data-toggle"));
      if (el && r.checked) el.classList.toggle("js-hidden", r.hasAttribute("data-toggle-hide"));
    });
  });

  // Wizard, step 1: inputs that depend on the provider.
  var providers = document.querySelectorAll("input[data-provider]");
  function provider() {
    var v = "";
    providers.forEach(function (p) { if (p.checked) v = p.value; });
    return v;
  }
  function applyProvider() {
    var p = provider();
    var cloud = p !== "ssh" && p !== "local";
    document.querySelectorAll("[data-show-when]").forEach(function (el) {
      var rule = el.getAttribute("data-show-when");
      var show = true;
      if (rule === "provider=cloud") show = cloud;
      else if (rule.indexOf("provider!=") === 0) show = p !== rule.slice(10);
      else if (rule.indexOf("provider=") === 0) show = p === rule.slice(9);
      el.hidden = !show;
    });
    // Region and zone: this provider's examples, and whether a zone is required.
    var hints = document.getElementById("provider-hints");
    if (hints) {
      Array.prototype.forEach.call(hints.content.querySelectorAll("i"), function (h) {
        if (h.getAttribute("data-provider") !== p) return;
        var region = document.getElementById("f-region"), zone = document.getElementById("f-zone");
        if (region) region.placeholder = h.getAttribute("data-region");
        if (zone) zone.placeholder = h.getAttribute("data-zone");
        var req = h.getAttribute("data-zone-required") === "true";
        var opt = document.querySelector("[data-zone-optional]"), reqEl = document.querySelector("[data-zone-required]"), help = document.querySelector("[data-zone-help]");
        if (opt) opt.hidden = req;
        if (reqEl) reqEl.hidden = !req;
        if (help) help.textContent = h.getAttribute("data-zone-help");
      });
    }
    var sel = document.getElementById("f-credentials");
    if (sel) {
      var any = false;
      Array.prototype.forEach.call(sel.options, function (o) {
        var k = o.getAttribute("data-kind");
        var fits = !k || k === p;
        o.hidden = !fits; o.disabled = !fits;
        if (k && fits) any = true;
      });
      var cur = sel.options[sel.selectedIndex];
      if (cur && (cur.disabled || !cur.value)) {
        sel.value = "";
        Array.prototype.some.call(sel.options, function (o) { if (!o.disabled && o.value) { sel.value = o.value; return true; } return false; });
      }
      suggestRegion();
      var link = document.querySelector("[data-cred-link]");
      if (link) {
        link.href = "/credentials/new?kind=" + encodeURIComponent(p) + "&next=" + encodeURIComponent("/platforms/new?provider=" + p);
        var none = document.querySelector("[data-cred-none]");
        if (none) none.textContent = any ? "" : "No credential for this provider yet. ";
      }
    }
  }
  // The region follows the chosen credential's default region, unless
  // the user typed one of their own.
  function suggestRegion() {
    var sel = document.getElementById("f-credentials"), region = document.getElementById("f-region");
    var box = document.querySelector("[data-suggested-region]");
    if (!sel || !region || !box) return;
    var prev = box.getAttribute("data-suggested-region");
    if (region.value !== "" && region.value !== prev) return;
    var o = sel.options[sel.selectedIndex];
    var next = (o && !o.disabled && o.getAttribute("data-region")) || "";
    region.value = next;
    box.setAttribute("data-suggested-region", next);
  }
  var credSel = document.getElementById("f-credentials");
  if (credSel) credSel.addEventListener("change", suggestRegion);
  if (providers.length) {
    providers.forEach(function (p) { p.addEventListener("change", applyProvider); });
    applyProvider();
  }

  // Wizard, step 2: the database recommendation follows the two answers.
  var recs = document.getElementById("recs");
  if (recs) {
    var kindEl = document.querySelector("[data-rec-kind]");
    var whyEl = document.querySelector("[data-rec-why]");
    var dbSel = document.getElementById("f-db_kind");
    var update = function () {
      var s = document.querySelector("input[name=structured]:checked");
      var t = document.querySelector("input[name=time_series]:checked");
      if (!s || !t) return;
      var st = String(s.value === "yes"), ts = String(t.value === "yes");
      Array.prototype.forEach.call(recs.content.querySelectorAll("i"), function (r) {
        if (r.getAttribute("data-structured") === st && r.getAttribute("data-time-series") === ts) {
          kindEl.textContent = r.getAttribute("data-name");
          whyEl.textContent = r.getAttribute("data-why");
          if (dbSel && dbSel.options[0]) dbSel.options[0].textContent = "Use the recommendation (" + r.getAttribute("data-name") + ")";
        }
      });
    };
    document.querySelectorAll("input[data-rec]").forEach(function (r) { r.addEventListener("change", update); });
  }

  // Job page: follow the job live. The server sends "log" events (a chunk
  // of the log), "job" events (the state and the page's live regions,
  // rendered on the server) and a last "end" event.
  var job = document.getElementById("job");
  if (job && job.hasAttribute("data-events") && window.EventSource) {
    var log = document.getElementById("job-log");
    var announce = document.getElementById("job-announce");
    var seq = log ? log.getAttribute("data-seq") || "0" : "0";
    var es = new EventSource(job.getAttribute("data-events") + "?after=" + encodeURIComponent(seq));
    job.classList.add("live");
    es.addEventListener("log", function (e) {
      var c = JSON.parse(e.data);
      if (!log) return;
      var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      log.appendChild(document.createTextNode(c.text));
      log.setAttribute("data-seq", String(c.seq));
      var empty = document.querySelector("[data-log-empty]");
      if (empty) empty.remove();
      if (atEnd) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("job", function (e) {
      var ev = JSON.parse(e.data);
      Object.keys(ev.regions).forEach(function (name) {
        var el = job.querySelector('[data-live="' + name + '"]');
        var r = ev.regions[name];
        if (el && el.getAttribute("data-sum") !== r.sum) {
          el.innerHTML = r.html;
          el.setAttribute("data-sum", r.sum);
        }
      });
      if (job.getAttribute("data-job-state") !== ev.state) {
        job.setAttribute("data-job-state", ev.state);
        if (announce) announce.textContent = "The job is " + ev.state.replace("-", " ") + ".";
      }
    });
    es.addEventListener("end", function (e) {
      es.close();
      job.classList.remove("live");
      job.removeAttribute("data-events");
      var st = JSON.parse(e.data).state;
      if (st) job.setAttribute("data-job-state", st);
    });
    // After a network error the browser reconnects by itself, with the
    // last log seq it saw; when it gives up, the Reload link comes back.
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) job.classList.remove("live");
    });
  }
})();
