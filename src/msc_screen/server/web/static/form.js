// Progressive enhancement only; the server re-checks everything.
// - hides follow-up questions whose trigger (in the same section) is not answered the way
//   the rule asks, and announces one that appears (aria-live);
// - checks number ranges and "not in the future" dates before the form is sent;
// - moves focus to an error summary when the page shows one.
(function () {
  "use strict";
  var summary = document.querySelector("[data-focus]");
  if (summary) { summary.focus(); }
  // a physician's typed reason survives a page reload or a sign-in again in this tab
  // (sessionStorage: gone when the tab closes); cleared once the sign-off is saved
  var store = null;
  try { store = window.sessionStorage; } catch (e) { store = null; }
  if (store && document.getElementById("signed-notice")) {
    Object.keys(store).forEach(function (k) { if (k.indexOf("draft:") === 0) { store.removeItem(k); } });
  }
  document.querySelectorAll("textarea[data-draft]").forEach(function (t) {
    if (!store) { return; }
    var key = "draft:" + t.getAttribute("data-draft");
    if (!t.value && store.getItem(key)) { t.value = store.getItem(key); }
    t.addEventListener("input", function () { store.setItem(key, t.value); });
  });
  // the printable report tells the server when it is printed (audited as report.print)
  var printed = document.querySelector("form[data-print-audit]");
  if (printed) {
    var sent = false;
    window.addEventListener("beforeprint", function () {
      if (sent) { return; }
      sent = true;
      fetch(printed.action, {method: "POST", body: new FormData(printed), keepalive: true,
                             credentials: "same-origin"});
    });
    var btn = document.getElementById("print-report");
    if (btn) { btn.hidden = false; btn.addEventListener("click", function () { window.print(); }); }
  }
  var form = document.querySelector("form[data-questionnaire]");
  if (!form) { return; }
  var deps = Array.prototype.slice.call(form.querySelectorAll("[data-when-q]"));
  var announce = document.getElementById("announce");
  function value(name) {
    var els = form.querySelectorAll("[name='" + name.replace(/'/g, "") + "']");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.type === "radio") { if (el.checked) { return el.value; } }
      else if (el.value !== "") { return el.value; }
    }
    return null;
  }
  function update(first) {
    var shown = [];
    deps.forEach(function (d) {
      var v = value(d.getAttribute("data-when-q"));
      var a = d.getAttribute("data-when-a");
      var op = d.getAttribute("data-when-op");
      var on;
      if (op === "exists") { on = (v !== null) === (a !== "false"); }
      else if (op === "!=") { on = v !== null && v !== a; }
      else { on = v === a; }
      if (on && d.hidden && !first) { shown.push(d.getAttribute("data-label")); }
      d.hidden = !on;
    });
    if (announce && shown.length) {
      announce.textContent = "A further question appeared below: " + shown.join("; ");
    }
  }
  function problem(el) {
    var v = el.value.trim();
    if (v === "") { return null; }
    if (el.hasAttribute("data-not-future")) {
      var today = new Date().toISOString().slice(0, 10);
      return v > today ? "Enter a date that is not in the future." : null;
    }
    var n = Number(v);
    var lo = el.getAttribute("data-min"), hi = el.getAttribute("data-max");
    if (isNaN(n)) { return "Enter a number, for example 12."; }
    if ((lo !== null && n < Number(lo)) || (hi !== null && n > Number(hi))) {
      if (lo !== null && hi !== null) { return "Enter a number from " + lo + " to " + hi + "."; }
      return lo !== null ? "Enter a number of at least " + lo + "." : "Enter a number of at most " + hi + ".";
    }
    return null;
  }
  form.addEventListener("submit", function (ev) {
    var bad = null;
    form.querySelectorAll("[data-min], [data-max], [data-not-future]").forEach(function (el) {
      var box = el.closest(".question");
      if (box && box.hidden) { return; }
      var msg = problem(el);
      var old = document.getElementById(el.id + "-page-error");
      if (old) { old.remove(); }
      if (msg) {
        var p = document.createElement("p");
        p.className = "error"; p.id = el.id + "-page-error"; p.textContent = msg;
        el.parentNode.insertBefore(p, el);
        el.setAttribute("aria-invalid", "true");
        var d = (el.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (d.indexOf(p.id) < 0) { d.push(p.id); }
        el.setAttribute("aria-describedby", d.join(" "));
        if (!bad) { bad = el; }
      } else {
        el.removeAttribute("aria-invalid");
      }
    });
    var later = ev.submitter && ev.submitter.value !== "next";
    if (bad && !later) { ev.preventDefault(); bad.focus(); }
  });
  form.addEventListener("change", function () { update(false); });
  form.addEventListener("input", function () { update(false); });
  update(true);
}());
