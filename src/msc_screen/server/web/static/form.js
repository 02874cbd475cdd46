// Progressive enhancement only: hides follow-up questions whose trigger (in the same
// section) is not answered the way the rule asks. The server re-checks every enableWhen and
// drops answers to disabled questions, so nothing depends on this script.
(function () {
  "use strict";
  var form = document.querySelector("form[data-questionnaire]");
  if (!form) { return; }
  var deps = Array.prototype.slice.call(form.querySelectorAll("[data-when-q]"));
  function value(name) {
    var els = form.querySelectorAll("[name='" + name.replace(/'/g, "") + "']");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.type === "radio") { if (el.checked) { return el.value; } }
      else if (el.value !== "") { return el.value; }
    }
    return null;
  }
  function update() {
    deps.forEach(function (d) {
      var v = value(d.getAttribute("data-when-q"));
      var a = d.getAttribute("data-when-a");
      var op = d.getAttribute("data-when-op");
      var on;
      if (op === "exists") { on = (v !== null) === (a !== "false"); }
      else if (op === "!=") { on = v !== null && v !== a; }
      else { on = v === a; }
      d.hidden = !on;
    });
  }
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
}());
