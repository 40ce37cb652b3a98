// matconv's interactive page. The data (in the convolution's orientation: rows of A are
// point-side cells, the convolution's outputs; columns are window-side cells, its inputs) comes
// from the JSON element #matconv-data. The transposed view swaps the roles: its input is the
// point side, its output the window side, and its matrix is A.T.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("matconv-data").textContent);
  const info = document.getElementById("info");
  const toggle = document.getElementById("transposed");
  const prod = (xs) => xs.reduce((a, b) => a * b, 1);
  const count = (n, noun) => n + " " + noun + (n === 1 ? "" : "s");
  let view = null;

  function unravel(flat, shape) {
    const out = [];
    for (let k = shape.length - 1; k >= 0; k--) {
      out.unshift(flat % shape[k]);
      flat = Math.floor(flat / shape[k]);
    }
    return out;
  }

  function cellName(letter, flat, shape) {
    return letter + "(" + unravel(flat, shape).join(",") + ")";
  }

  // blue for negative, red for positive, near-white at 0 (like matplotlib's coolwarm ends)
  function color(value) {
    const t = Math.max(-1, Math.min(1, value / data.vmax));
    const mid = [242, 242, 242];
    const end = t < 0 ? [59, 76, 192] : [180, 4, 38];
    const c = mid.map((m, k) => Math.round(m + (end[k] - m) * Math.abs(t)));
    return "rgb(" + c.join(",") + ")";
  }

  function element(tag, className) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    return e;
  }

  // one grid per channel, stacked; make(channel, flatSpatial) returns each cell's element
  function drawGrids(container, shape, make) {
    container.replaceChildren();
    const spatial = shape.slice(1);
    const cols = spatial[spatial.length - 1];
    for (let c = 0; c < shape[0]; c++) {
      const wrap = element("div", "channel-grid");
      const label = element("div", "channel");
      label.textContent = "c" + c;
      const grid = element("div", "grid");
      grid.style.gridTemplateColumns = "repeat(" + cols + ", var(--cell))";
      for (let s = 0; s < prod(spatial); s++) grid.appendChild(make(c, s));
      wrap.append(label, grid);
      container.appendChild(wrap);
    }
  }

  function build(transposed) {
    const v = {
      transposed,
      windowCells: [], pointCells: [], pads: new Map(), matrix: new Map(),
      byRow: new Map(), byCol: new Map(), entryAt: new Map(),
      nRows: 0, nCols: 0,
    };
    const windowAttr = transposed ? "out" : "in";
    const pointAttr = transposed ? "in" : "out";
    const inputGrids = document.getElementById("input-grids");
    const outputGrids = document.getElementById("output-grids");
    const padded = data.paddedShape;
    const paddedSpatial = padded.slice(1);
    drawGrids(transposed ? outputGrids : inputGrids, padded, (c, s) => {
      const number = c * prod(paddedSpatial) + s;
      const index = data.windowCells[number];
      const e = element("div", index >= 0 ? "win" : "pad");
      if (index >= 0) {
        e.dataset[windowAttr] = index;
        v.windowCells[index] = e;
        e.addEventListener("mouseenter", () => hoverWindow(index));
      } else {
        e.dataset.pad = [c].concat(unravel(s, paddedSpatial)).join(",");
        v.pads.set(number, e);
        e.addEventListener("mouseenter", () => hoverPad(number, e));
      }
      return e;
    });
    const pointSpatial = data.pointShape.slice(1);
    drawGrids(transposed ? inputGrids : outputGrids, data.pointShape, (c, s) => {
      const index = c * prod(pointSpatial) + s;
      const e = element("div", "pt");
      e.dataset[pointAttr] = index;
      v.pointCells[index] = e;
      e.addEventListener("mouseenter", () => hoverPoint(index));
      return e;
    });

    // the shown matrix: A (rows = points) or A.T (rows = window cells)
    const nPoint = prod(data.pointShape), nWindow = prod(data.windowShape);
    v.nRows = transposed ? nWindow : nPoint;
    v.nCols = transposed ? nPoint : nWindow;
    for (const [point, win, value, label, indices, taps] of data.entries) {
      const entry = { point, win, value, label, indices, taps,
                      row: transposed ? win : point, col: transposed ? point : win };
      v.entryAt.set(entry.row * v.nCols + entry.col, entry);
      if (!v.byRow.has(point)) v.byRow.set(point, []);
      v.byRow.get(point).push(entry);
      if (!v.byCol.has(win)) v.byCol.set(win, []);
      v.byCol.get(win).push(entry);
    }
    const table = document.getElementById("matrix");
    table.replaceChildren();
    for (let r = 0; r < v.nRows; r++) {
      const tr = element("tr");
      for (let c = 0; c < v.nCols; c++) {
        const key = r * v.nCols + c;
        const entry = v.entryAt.get(key);
        const td = element("td", entry ? "nz" : "zero");
        td.dataset.row = r;
        td.dataset.col = c;
        if (entry) td.style.background = color(entry.value);
        td.addEventListener("mouseenter", () => hoverMatrix(r, c));
        v.matrix.set(key, td);
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    const which = transposed ? "transposed" : "conv";
    document.getElementById("describe").textContent = data.describe[which];
    document.getElementById("input-title").textContent =
      "input x " + JSON.stringify(transposed ? data.pointShape : data.windowShape);
    document.getElementById("output-title").textContent =
      "output y " + JSON.stringify(transposed ? data.windowShape : data.pointShape);
    document.getElementById("matrix-title").textContent =
      (transposed ? "Aᵀ" : "A") + ": " + v.nRows + " × " + v.nCols +
      " (" + data.entries.length + " nonzeros)";
    table.onmouseleave = clear;
    inputGrids.onmouseleave = clear;
    outputGrids.onmouseleave = clear;
    view = v;
    clear();
  }

  // ---- highlighting: every highlighted element gets the class "hl"
  function clear() {
    for (const e of document.querySelectorAll(".hl, .band")) e.classList.remove("hl", "band");
    info.textContent = "Hover a cell of a grid or of the matrix.";
    info.dataset.weight = "";
  }

  function light(e) { if (e) e.classList.add("hl"); }

  function lightEntry(entry) {
    light(view.matrix.get(entry.row * view.nCols + entry.col));
    light(view.windowCells[entry.win]);
    light(view.pointCells[entry.point]);
    for (const number of entry.taps) light(view.pads.get(number));
  }

  function band(row, col) {
    if (row !== null) {
      for (let c = 0; c < view.nCols; c++) view.matrix.get(row * view.nCols + c).classList.add("band");
    } else {
      for (let r = 0; r < view.nRows; r++) view.matrix.get(r * view.nCols + col).classList.add("band");
    }
  }

  function names(entry) {  // w_{o,c,i,j} with subscripts, joined by " + "
    const parts = [];
    entry.indices.forEach((ix, k) => {
      if (k) parts.push(document.createTextNode(" + "));
      const sub = element("sub");
      sub.textContent = ix.join(",");
      parts.push(document.createTextNode("w"), sub);
    });
    return parts;
  }

  const windowName = (i) => cellName(view.transposed ? "y" : "x", i, data.windowShape);
  const pointName = (i) => cellName(view.transposed ? "x" : "y", i, data.pointShape);
  const matrixName = () => (view.transposed ? "Aᵀ" : "A");

  function hoverMatrix(r, c) {
    clear();
    const entry = view.entryAt.get(r * view.nCols + c);
    const where = matrixName() + "[" + r + ", " + c + "]";
    const win = view.transposed ? r : c, point = view.transposed ? c : r;
    const link = view.transposed ? pointName(point) + " → " + windowName(win)
                                 : windowName(win) + " → " + pointName(point);
    if (entry) {
      lightEntry(entry);
      info.replaceChildren(document.createTextNode(where + " = "), ...names(entry),
                           document.createTextNode(" = " + entry.value.toPrecision(4) +
                                                   "   (" + link + ")"));
      info.dataset.weight = entry.label;
    } else {
      light(view.matrix.get(r * view.nCols + c));
      light(view.windowCells[win]);
      light(view.pointCells[point]);
      info.textContent = where + " = 0: no kernel tap links " + link;
      info.dataset.weight = "0";
    }
  }

  // a point-side cell: a row of A (the convolution's output) or a column of A.T (the input
  // of the transposed convolution); the padding cells under its taps light up too
  function hoverPoint(point) {
    clear();
    const entries = view.byRow.get(point) || [];
    entries.forEach(lightEntry);
    light(view.pointCells[point]);
    for (const number of data.rowPads[point]) light(view.pads.get(number));
    if (view.transposed) {
      band(null, point);
      info.textContent = pointName(point) + " scatters the kernel into " +
        count(entries.length, "output cell") + ": column " + point + " of Aᵀ";
    } else {
      band(point, null);
      info.textContent = pointName(point) + " reads " + count(entries.length, "input cell") +
        ": row " + point + " of A";
    }
  }

  // a window-side cell: a column of A (the convolution's input) or a row of A.T
  function hoverWindow(win) {
    clear();
    const entries = view.byCol.get(win) || [];
    entries.forEach(lightEntry);
    light(view.windowCells[win]);
    if (view.transposed) {
      band(win, null);
      info.textContent = windowName(win) + " sums " + count(entries.length, "input cell") +
        ": row " + win + " of Aᵀ";
    } else {
      band(null, win);
      info.textContent = windowName(win) + " reaches " + count(entries.length, "output cell") +
        ": column " + win + " of A";
    }
  }

  function hoverPad(number, e) {
    clear();
    light(e);
    const read = data.padReads[number];
    info.textContent = "padding cell (" + e.dataset.pad + ")" +
      (read >= 0 ? ": a copy of " + windowName(read) : ": zero");
  }

  toggle.addEventListener("change", () => build(toggle.checked));
  build(toggle.checked);
})();
