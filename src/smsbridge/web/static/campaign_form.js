// Campaign form (templates/campaign_form.html). The page works without this file; with it:
// - a new form's "Time zone of that date and time" starts at the browser's own zone (the
//   server starts it at UTC; the zone is always shown next to the date, either way);
// - typing attribute filters or profile ids picks that kind of audience, as the server
//   does when no kind is picked.
(function () {
  var zone = document.getElementById("send_at_zone");
  if (zone && zone.hasAttribute("data-fresh")) {
    var mine = "";
    try { mine = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { mine = ""; }
    for (var i = 0; i < zone.options.length; i++) {
      if (zone.options[i].value === mine) { zone.value = mine; break; }
    }
  }

  [["filter", "audience_filter"], ["profile_ids", "audience_ids"]].forEach(function (pair) {
    var box = document.getElementById(pair[0]), choice = document.getElementById(pair[1]);
    if (!box || !choice) { return; }
    box.addEventListener("input", function () {
      if (box.value.trim()) { choice.checked = true; }
    });
  });
})();
