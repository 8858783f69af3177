// The surface form: the fallback credentials never offer the primary credential itself.
// The server renders it hidden for the primary it knows; this follows a change of primary.
(function () {
  var primary = document.getElementById("credential_id");
  var fallbacks = document.getElementById("fallback_credential_ids");
  if (!primary || !fallbacks) { return; }
  function sync() {
    Array.prototype.forEach.call(fallbacks.options, function (option) {
      var isPrimary = option.value === primary.value;
      option.hidden = isPrimary;
      option.disabled = isPrimary;
      if (isPrimary) { option.selected = false; }
    });
  }
  primary.addEventListener("change", sync);
  sync();
})();

// The "Copy" buttons next to the webhook URLs: once copied, a button says so in the page's
// language (the word comes from the template, in data-copied).
(function () {
  document.querySelectorAll("[data-copy-field]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copyField);
      field.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
      button.textContent = button.dataset.copied;
    });
  });
})();
