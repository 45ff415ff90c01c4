// MyT web UI: progressive enhancement only. Every page works without this
// script; it makes a few things react at once.
(function () {
  "use strict";

  // Move focus to an error summary so screen readers announce it.
  var summary = document.querySelector("[data-autofocus]");
  if (summary) summary.focus();

  // Forms that ask for confirmation before a destructive action.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // Copy buttons.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (!el || !navigator.clipboard) return;
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        var t = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = t; }, 1500);
      });
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
      if (cur && cur.disabled) {
        sel.value = "";
        Array.prototype.some.call(sel.options, function (o) { if (!o.disabled && o.value) { sel.value = o.value; return true; } return false; });
      }
      var link = document.querySelector("[data-cred-link]");
      if (link) {
        link.href = "/credentials/new?kind=" + encodeURIComponent(p) + "&next=" + encodeURIComponent("/platforms/new?provider=" + p);
        var none = document.querySelector("[data-cred-none]");
        if (none) none.textContent = any ? "" : "No credential for this provider yet. ";
      }
    }
  }
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
})();
