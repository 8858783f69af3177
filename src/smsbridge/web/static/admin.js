// The admin's own behaviour, served as a file: the pages' Content-Security-Policy allows no
// inline script. Each part runs only on the page that has its elements.
(function () {
  // Profiles: the CSV import posts with an upload progress bar.
  var importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target, bar = document.getElementById("progress");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); } };
      xhr.onload = function () { document.open(); document.write(xhr.responseText); document.close(); };
      xhr.send(new FormData(form));
    });
  }
})();
