// The credential form: only the chosen authentication type's fields are shown. Without
// JavaScript the page shows the type chosen when it was rendered, and a "Show this type's
// fields" button re-renders it for another choice (the content security policy allows no
// inline script: this file is the form's only behaviour).
(function () {
  var select = document.getElementById("auth_type");
  if (!select) { return; }
  document.querySelectorAll(".no-js-only").forEach(function (element) { element.hidden = true; });
  function show() {
    document.querySelectorAll(".auth-fields").forEach(function (group) {
      group.hidden = group.dataset.auth.split(" ").indexOf(select.value) < 0;
    });
  }
  select.addEventListener("change", show);
  show();
})();
