document.querySelectorAll("table.modes").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var numeric = th.classList.contains("num");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-sort-value");
        var y = b.cells[col].getAttribute("data-sort-value");
        var d;
        if (numeric) {
          x = x === "" ? Infinity : parseFloat(x); y = y === "" ? Infinity : parseFloat(y);
          d = x === y ? 0 : (x < y ? -1 : 1);
        } else { d = x.localeCompare(y); }
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
