// ImmunoSep: the little behaviour HTMX does not cover (no inline scripts: the CSP forbids them).
document.addEventListener("click", function (event) {
  // A MedDRA suggestion fills the term field and the list closes.
  var button = event.target.closest("button.term");
  if (!button) return;
  var input = document.getElementById("f-term");
  if (input) {
    input.value = button.getAttribute("data-term");
    input.focus();
  }
  var list = document.getElementById("meddra-suggestions");
  if (list) list.innerHTML = "";
});
