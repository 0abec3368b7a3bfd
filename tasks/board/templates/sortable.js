// Click (or Enter on) a column header to sort its table; click again to reverse.
// Cells may carry data-sort (the exact value); rows keep their board order on ties.
(function () {
  function value(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    return raw === "" ? -Infinity : parseFloat(raw);
  }
  function sortTable(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = th.getAttribute("data-type") === "number";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[col], numeric), y = value(b.cells[col], numeric);
      var d = numeric ? (x === y ? 0 : (x < y ? -1 : 1)) : x.localeCompare(y);
      return (ascending ? d : -d) || (Number(a.getAttribute("data-position")) - Number(b.getAttribute("data-position")));
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.tabIndex = 0;
      th.setAttribute("role", "columnheader");
      th.addEventListener("click", function () { sortTable(table, th, col); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortTable(table, th, col); });
    });
  });
})();
