// simplenn's page: plain JS over the JSON API (see README, "The page and its API").
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

let model = null;          // /api/model
let version = -1;          // weights version last seen (live runs)
let phase = null;          // live run phase
const curve = { points: [], epochs: [] };
let digitsQuery = { label: null, predicted: null, page: 0 };
// The query whose list is read out when it comes: one the reader asked
// for (a cell opened, another page), which changes away from the
// keyboard's focus (WCAG 4.1.3); not the first one the page loads, nor an
// earlier query's list still on its way.
let announceFor = null;
let scored = null;         // weights version of the matrix shown
let instance = null;       // the server's X-Simplenn-Instance
// The page is being reloaded or left: a request cut short then says
// nothing about the server, and must not show it as stopped meanwhile.
let leaving = false;
addEventListener("beforeunload", () => { leaving = true; });

const STOPPED = "the server has stopped: start it again to use this page";
// A live run's matrix note until the test set is first scored.
const UNSCORED = "the test set is scored when training ends (or now, with the button)";

async function getJSON(url, options) {
  let r;
  try {
    r = await fetch(url, Object.assign({ cache: "no-store" }, options));
  } catch (e) {
    // A model file's page says so at once, not at its next 30 s check
    // (`watch`); a run's page says why at its next poll, 2 s on.
    if (!leaving && model && !model.live) {
      $("status").textContent = STOPPED;
      gone(true);
    }
    throw new Error("the server is not answering (stopped?): " + e.message);
  }
  // An answer after all: whatever said the server had stopped is past.
  if (model && !model.live && $("status").textContent === STOPPED) {
    $("status").textContent = "";
    gone(false);
  }
  // Another server on this port (restarted, another model or run): this
  // page's model, matrix and curve are no longer its; start again.
  const from = r.headers.get("X-Simplenn-Instance");
  if (from && instance && from !== instance) {
    leaving = true;
    location.reload();
    throw new Error("the server was restarted: reloading");
  }
  if (from) instance = from;
  const j = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
  if (!r.ok) {
    const e = new Error(j.error || r.statusText);
    e.status = r.status;
    throw e;
  }
  return j;
}

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------- the pad

const pad = $("pad");
const ctx = pad.getContext("2d");
// `pen`: the one pointer that draws (a second finger or a resting palm
// would join its strokes to the first's).
let drawing = false, last = null, inked = false, pen = null;
// Drawings since the page opened: an answer shows only while its drawing
// is the one on the pad (not one cleared meanwhile, and inked again).
let drawn = 0;
// Bumped by each chosen image, each stroke begun and each clearing: a
// chosen image's answer that arrives after any of them is not shown.
let chosen = 0;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  drawn++;
  chosen++;
  // A prediction queued behind one in flight is of the ink just cleared.
  again = false;
  showAnswer(null);
}

function at(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

function stroke(a, b, send = true) {
  ctx.beginPath();
  if (a[0] === b[0] && a[1] === b[1]) {
    // A dot: canvas drops a line of no length, round cap and all (a tap
    // drew nothing, and the blank pad was sent as a drawing).
    ctx.fillStyle = "#000";
    ctx.arc(a[0], a[1], 10, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 20;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  }
  inked = true;
  if (send) schedule();
}

// An answer the user asked for (a stroke ended, an image chosen) is read
// out once; a live run's re-scoring of the same ink is not.
let announceDue = false;

pad.addEventListener("pointerdown", (e) => {
  if (drawing && e.pointerId !== pen) { e.preventDefault(); return; }
  drawing = true;
  chosen++;
  pen = e.pointerId;
  try { pad.setPointerCapture(e.pointerId); } catch (_) { /* synthetic pointers */ }
  last = at(e);
  // A stroke's first dot alone is no digit: the answer waits for the
  // stroke to move, or to end (a tap).
  stroke(last, last, false);
  e.preventDefault();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing || e.pointerId !== pen) return;
  const p = at(e);
  stroke(last, p);
  last = p;
  e.preventDefault();
});
for (const type of ["pointerup", "pointercancel", "pointerleave", "lostpointercapture"]) {
  pad.addEventListener(type, (e) => {
    if (drawing && e.pointerId === pen) { drawing = false; pen = null; announceDue = true; schedule(); }
  });
}
$("clear").addEventListener("click", clearPad);

// A chosen image (the keyboard's way to a prediction): sent as it is, and
// prepared by the server as a drawing is; the pad is cleared for it.
$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  $("upload").value = "";
  if (!file) return;
  clearPad();
  announceDue = true;
  const ticket = ++chosen;
  if (file.size > 65536) {
    return showAnswer(null, `${file.name} is ${Math.ceil(file.size / 1024)} KiB; the page takes images of up to 64 KiB (simplenn predict reads larger ones)`);
  }
  try {
    const j = await getJSON("/api/predict", { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    if (ticket === chosen) showAnswer(j);
  } catch (e) {
    if (ticket === chosen) showAnswer(null, e.message);
  }
});

// One prediction in flight at a time; strokes made meanwhile send one more.
let inFlight = false, again = false;
function schedule() {
  if (!inked) return;
  if (inFlight) { again = true; return; }
  send();
}
function send() {
  inFlight = true;
  again = false;
  const of = drawn;
  pad.toBlob(async (blob) => {
    try {
      const j = await getJSON("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
      if (of === drawn) showAnswer(j);
    } catch (e) {
      // Of a drawing since cleared: the pad shows "–" (or its new answer).
      if (of === drawn) showAnswer(null, e.message);
    } finally {
      inFlight = false;
      if (again && inked) send();
    }
  }, "image/png");
}

// Class c as the page writes it: its number, and its name where the model
// has names (`--class-names`).
function cname(c) {
  return model && model.class_names ? `${c} ${isolate(model.class_names[c])}` : String(c);
}

// A name set apart from the text around it (Unicode's first-strong
// isolate): a right-to-left name would otherwise carry the numbers beside
// it to its side ("read as 1 (50) אבג" for "read as 1 אבג (50)").
function isolate(name) {
  return "\u2068" + name + "\u2069";
}

// A path as the command line writes it (`show::path`): its backslashes
// doubled and its control characters (a line break, an escape, a direction
// override) written out, so that one cannot turn the text around it.
function written(text) {
  return String(text).replace(
    /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g,
    (c) => ({ "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" })[c] || "\\u{" + c.codePointAt(0).toString(16) + "}"
  );
}

// Whether the model reads digits, as far as the page can tell: ten
// classes without names, as MNIST's models have (a model with names, or
// with another number of classes, is of some other set).
function ofDigits() {
  return !!model && !model.class_names && model.classes === 10;
}

// What the test images are called.
function things() {
  return ofDigits() ? "digits" : "images";
}

function buildBars(k) {
  const bars = $("bars");
  bars.textContent = "";
  for (let c = 0; c < k; c++) {
    // A long name is cut with an ellipsis (page.css); the title has it whole.
    bars.append(el("span", { class: "label", title: cname(c) }, cname(c)));
    const bar = el("div", { class: "bar", id: "bar-" + c });
    bar.append(el("div"));
    bars.append(bar);
    bars.append(el("span", { id: "p-" + c }, ""));
  }
  // Past 20 classes the bars scroll in a box of about 20 rows, so that the
  // pad and its answer stay in view (256 bars are some 3,500 px).
  bars.classList.toggle("many", k > 20);
}

// A probability as a percentage to a tenth, except that only certainty is
// "100.0" and only nothing at all is "0.0": 0.9996 rounded to "100.0" would
// say the model is sure, so it reads ">99.9" (and 0.0004, "<0.1"), as
// `predict` writes it.
function percent(p) {
  const s = (100 * p).toFixed(1);
  if (s === "100.0" && p < 1) return ">99.9";
  if (s === "0.0" && p > 0) return "<0.1";
  return s;
}

// A share (an accuracy) to a hundredth by the same rule: one miss in
// 30,000 reads ">99.99", not a perfect "100.00", as `eval` writes it.
function percent2(share) {
  const s = (100 * share).toFixed(2);
  if (s === "100.00" && share < 1) return ">99.99";
  if (s === "0.00" && share > 0) return "<0.01";
  return s;
}

function showAnswer(j, why) {
  const k = model ? model.classes : 0;
  $("digit").textContent = j ? String(j.digit) : "–";
  // Read out once a stroke has ended, not at every answer while drawing,
  // as the page shows it. The likeliest of at most 256 classes has 0.4 %
  // or more, so it is never read as "under 0.1 percent".
  const said = (p) => percent(p).replace(">", "over ").replace("<", "under ");
  // (Not while a newer request for the same ink is on its way.)
  if (!drawing && announceDue && !again) {
    $("announce").textContent = j ? `reads ${cname(j.digit)}, ${said(j.probability)} percent` : (why || "");
    announceDue = false;
  }
  $("digit").dataset.version = j ? j.version : "";
  const named = j && model && model.class_names ? isolate(model.class_names[j.digit]) + " · " : "";
  $("confidence").textContent = j ? named + percent(j.probability) + "\u00a0%" : (why || "");
  for (let c = 0; c < k; c++) {
    const p = j ? j.probabilities[c] : 0;
    const bar = $("bar-" + c);
    bar.firstChild.style.width = (100 * p).toFixed(1) + "%";
    bar.classList.toggle("top", !!j && c === j.digit);
    $("p-" + c).textContent = j ? percent(p) + "%" : "";
  }
  const sees = $("sees");
  const sctx = sees.getContext("2d");
  if (!j) { sctx.clearRect(0, 0, sees.width, sees.height); return; }
  if (sees.width !== j.side) { sees.width = j.side; sees.height = j.side; }
  sctx.putImageData(grayImage(sctx, j.input, j.side, j.side), 0, 0);
}

function grayImage(c, pixels, w, h) {
  const img = c.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = pixels[i];
    img.data.set([v, v, v, 255], 4 * i);
  }
  return img;
}

// ---------------------------------------------------------------- the curve

// The plot in the SVG's viewBox units: the frame, and the axes' margins.
// B: room below the plot for the epoch labels and, clear of them at a
// phone's 14-unit text, the axis title.
const W = 560, H = 260, L = 44, R = 44, T = 10, B = 36;
// A line gets a dot per point only up to this many points: past it the
// dots (r = 3) overlap into a blob, and each one is an SVG element.
const DOTS_MAX = 60;

// Each line's colour, dashes and marker, by its legend key. No two lines
// share a dash pattern, so that colour is not the only thing telling them
// apart (WCAG 1.4.1: the two purple test lines, a colour-blind reader's
// orange and green); losses (left axis) have round markers, accuracies
// (right axis, in %) square ones. The legend draws its keys from here.
const LINES = {
  train: { color: "#2f6fde", dash: "", mark: "circle" },
  val: { color: "#b86e00", dash: "8 4", mark: "circle" },
  "test-loss": { color: "#8e44ad", dash: "2 3", mark: "circle" },
  acc: { color: "#2a9d4b", dash: "8 3 2 3", mark: "square" },
  test: { color: "#8e44ad", dash: "12 3 2 3 2 3", mark: "square" },
};

// A marker of `style` centred on (x, y).
function marker(style, x, y) {
  return style.mark === "square"
    ? el("svg:rect", { x: x - 3, y: y - 3, width: 6, height: 6, fill: style.color })
    : el("svg:circle", { cx: x, cy: y, r: 3, fill: style.color });
}

for (const [key, style] of Object.entries(LINES)) {
  const icon = el("svg:svg", { width: 28, height: 10, viewBox: "0 0 28 10", "aria-hidden": "true", class: "swatch" });
  const attrs = { x1: 0, x2: 28, y1: 5, y2: 5, stroke: style.color, "stroke-width": 2 };
  if (style.dash) attrs["stroke-dasharray"] = style.dash;
  icon.append(el("svg:line", attrs), marker(style, 14, 5));
  document.querySelector(".legend .key." + key).prepend(icon);
}

// Append b's items to a (a.push(...b) passes each item as an argument,
// which overflows the stack for a long run's tens of thousands).
function append(a, b) {
  for (const v of b) a.push(v);
}

// [least, greatest] of coordinate i over the points of every series, by a
// loop: Math.max(...values) overflows the stack past ~100,000 values (a
// metrics log of many short epochs). Numbers only (a log writes a loss
// that was not finite as null).
function extent(series, i) {
  let lo = Infinity, hi = -Infinity;
  for (const s of series) {
    for (const p of s) {
      const v = p[i];
      if (typeof v !== "number" || !isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

// The smallest step of the form m × 10^k (m from `ms`) that is at least
// `raw`: gridlines at multiples of it print as short, exact numbers.
function niceStep(raw, ms = [1, 2, 2.5, 5]) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of ms) if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// Decimals that print every multiple of `step` exactly (0.25: 2), so that
// each label is its gridline's value, not a rounding of it.
function decimals(step) {
  let d = 0;
  while (d < 12 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6) d++;
  return d;
}

// Multiples of `step` from `from` to `to` (both on the grid), counted
// rather than summed so that no rounding error piles up.
function ticks(from, step, to) {
  const out = [];
  const n = Math.round((to - from) / step);
  for (let i = 0; i <= n; i++) out.push(from + i * step);
  return out;
}

// At most a few points per column of the plot (one viewBox unit, a pixel
// at the SVG's natural width): in each column the first, lowest, highest
// and last point, in their order. A log of 100,000 epochs is drawn with
// at most ~1,900 points (some 950 for a smooth curve) that look the same,
// a one-epoch spike included, instead of a polyline of 100,000.
function thin(data, x) {
  if (data.length <= 2 * (W - L - R)) return data;
  const out = [];
  let i = 0;
  while (i < data.length) {
    const col = Math.floor(x(data[i][0]));
    // Point i is in its column whatever x gives (NaN is equal to nothing),
    // so the loop always moves on.
    let j = i + 1, lo = i, hi = i;
    for (; j < data.length && Math.floor(x(data[j][0])) === col; j++) {
      if (data[j][1] < data[lo][1]) lo = j;
      if (data[j][1] > data[hi][1]) hi = j;
    }
    const keep = [i, lo, hi, j - 1].sort((a, b) => a - b);
    for (let k = 0; k < keep.length; k++) if (k === 0 || keep[k] !== keep[k - 1]) out.push(data[keep[k]]);
    i = j;
  }
  return out;
}

function drawCurve() {
  const svg = $("curve");
  svg.textContent = "";
  const pts = curve.points, eps = curve.epochs;
  const trainLoss = pts.length ? pts.map((p) => [p.epoch, p.loss]) : eps.map((e) => [e.epoch, e.train_loss]);
  const valLoss = eps.filter((e) => e.val_loss !== null).map((e) => [e.epoch, e.val_loss]);
  const valAcc = eps.filter((e) => e.val_accuracy !== null).map((e) => [e.epoch, e.val_accuracy]);
  // A --test-every-epoch log's test loss and accuracy, on the same axes
  // (as `simplenn plot` draws them).
  const testLoss = eps.filter((e) => e.test_loss != null).map((e) => [e.epoch, e.test_loss]);
  const testAcc = eps.filter((e) => e.test_accuracy != null).map((e) => [e.epoch, e.test_accuracy]);
  const accs = [valAcc, testAcc];
  const losses = [trainLoss, valLoss, testLoss];
  const hasAcc = valAcc.length + testAcc.length > 0;
  // Every point the curve has, drawn or thinned out (tests count them).
  svg.dataset.points = String(trainLoss.length + valLoss.length);
  // The legend names only the lines drawn (a --val 0 run has no
  // validation lines; without --metrics there are none).
  for (const [key, data] of [["train", trainLoss], ["val", valLoss], ["test-loss", testLoss], ["acc", valAcc], ["test", testAcc]]) {
    document.querySelector(".legend .key." + key).hidden = !data.length;
  }
  if (!trainLoss.length && !valLoss.length) return;
  const xmax = Math.max(1, (model && model.live && status.epochs) || 0, extent(losses.concat(accs), 0)[1]);
  // The axes end on gridlines whose values print exactly: loss from 0 in
  // 3 or 4 steps of 1, 2, 2.5 or 5 × 10^k; accuracy up to 100 % from a
  // multiple of its step (2 %, 5 %, 10 %, 20 %: whole percents; each
  // divides 100 %) at or below the lowest accuracy and 90 %.
  // At least 0.001: labels of a log whose losses are all (near) 0 stay
  // short enough for the margin.
  const lossTop = Math.max(1e-3, extent(losses, 1)[1]) * 1.05;
  const lstep = niceStep(lossTop / 4);
  const lmax = lstep * Math.ceil(lossTop / lstep - 1e-9);
  const low = Math.min(0.9, Math.max(0, extent(accs, 1)[0]));
  const astep = niceStep((1 - low) / 5, [1, 2, 5]);
  const amin = hasAcc ? astep * Math.floor(low / astep + 1e-9) : 0.9;
  const x = (v) => L + (W - L - R) * v / xmax;
  const yl = (v) => T + (H - T - B) * (1 - v / lmax);
  const ya = (v) => T + (H - T - B) * (1 - (v - amin) / (1 - amin));
  svg.append(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#d9dde6" }));
  // Loss: a gridline at each label. Accuracy, whose steps need not meet
  // the loss's gridlines: a tick on the right edge at each of its labels.
  const ld = decimals(lstep);
  for (const v of ticks(0, lstep, lmax)) {
    const y = yl(v);
    if (v > 0 && v < lmax) svg.append(el("svg:line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#eef0f4" }));
    svg.append(el("svg:line", { x1: L - 4, x2: L, y1: y, y2: y, stroke: "#858c9b" }));
    svg.append(el("svg:text", { x: L - 6, y: y + 4, "text-anchor": "end" }, v.toFixed(ld)));
  }
  if (hasAcc) {
    const ad = decimals(100 * astep);
    for (const v of ticks(amin, astep, 1)) {
      const y = ya(v);
      svg.append(el("svg:line", { x1: W - R, x2: W - R + 4, y1: y, y2: y, stroke: "#858c9b" }));
      svg.append(el("svg:text", { x: W - R + 6, y: y + 4 }, (100 * v).toFixed(ad) + "%"));
    }
  }
  // Epochs: about 8 labels at round values (a live run's first points
  // are tenths of an epoch).
  // A log's epochs are whole: a step of at least one.
  const xstep = pts.length ? niceStep(xmax / 8, [1, 2, 5]) : Math.max(1, niceStep(xmax / 8, [1, 2, 5]));
  const xd = decimals(xstep);
  for (const v of ticks(0, xstep, xstep * Math.floor(xmax / xstep + 1e-9))) {
    svg.append(el("svg:line", { x1: x(v), x2: x(v), y1: H - B, y2: H - B + 4, stroke: "#858c9b" }));
    svg.append(el("svg:text", { x: x(v), y: H - B + 16, "text-anchor": "middle" }, v.toFixed(xd)));
  }
  svg.append(el("svg:text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle" }, "epoch"));
  const line = (all, y, key, dots) => {
    if (!all.length) return;
    const style = LINES[key];
    const data = thin(all, x);
    const attrs = { points: data.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "), fill: "none", stroke: style.color, "stroke-width": 2, "data-key": key };
    if (style.dash) attrs["stroke-dasharray"] = style.dash;
    svg.append(el("svg:polyline", attrs));
    if (dots && all.length <= DOTS_MAX) for (const p of data) svg.append(marker(style, x(p[0]), y(p[1])));
  };
  line(trainLoss, yl, "train", !pts.length);
  line(valLoss, yl, "val", true);
  line(testLoss, yl, "test-loss", true);
  line(valAcc, ya, "acc", true);
  line(testAcc, ya, "test", true);
}

// The curve in words, for a reader who cannot see it (WCAG 1.1.1): how
// far the run got, its last figures and its best validation accuracy,
// under the drawing (which names it as its description); and, opened on
// demand, a table of every epoch's figures.
function loss4(v) {
  return typeof v === "number" && isFinite(v) ? v.toFixed(4) : "not a number";
}

// The figures an epoch's record may hold, for the words and the table:
// name, field, format, unit. A record always has a train loss (one that
// was no number is logged as null: "not a number"); the others where the
// run had them.
const FIGURES = [
  ["train loss", "train_loss", loss4, ""],
  ["validation loss", "val_loss", loss4, ""],
  ["validation accuracy", "val_accuracy", percent2, "\u00a0%"],
  ["test loss", "test_loss", loss4, ""],
  ["test accuracy", "test_accuracy", percent2, "\u00a0%"],
];
const holds = (e, field) => field === "train_loss" || e[field] != null;

function describeCurve() {
  const pts = curve.points, eps = curve.epochs;
  let text = "";
  if (eps.length) {
    const e = eps[eps.length - 1];
    const parts = FIGURES.filter(([, field]) => holds(e, field))
      .map(([name, field, format, unit]) => `${name} ${format(e[field])}${unit}`);
    text = `${eps.length === 1 ? "1 epoch" : eps.length + " epochs"}; the last (${e.epoch}): ${parts.join(", ")}`;
    let best = null;
    for (const b of eps) if (b.val_accuracy !== null && (best === null || b.val_accuracy > best.val_accuracy)) best = b;
    if (best !== null && eps.length > 1) text += `; best validation accuracy ${percent2(best.val_accuracy)}\u00a0% (epoch ${best.epoch})`;
    text += ".";
  } else if (pts.length) {
    const p = pts[pts.length - 1];
    // A live point's epoch is a fraction (steps over steps an epoch).
    text = `no epoch finished yet; the latest point (epoch ${p.epoch.toFixed(2)}): train loss ${loss4(p.loss)}.`;
  }
  $("curve-summary").textContent = text;
  $("curve-figures").hidden = !eps.length;
  // Rebuilt only when the epochs changed (one came, or the log was read
  // anew: new records): a live run's points come far more often, and a
  // rebuilt table loses a screen reader's place in it.
  if ($("curve-figures").open && tabled !== eps[eps.length - 1]) curveTable();
}

// The last epoch's record in the table last shown.
let tabled;

function curveTable() {
  const eps = curve.epochs;
  const cols = [["epoch", (e) => String(e.epoch)]];
  for (const [name, field, format, unit] of FIGURES) {
    if (!eps.some((e) => holds(e, field))) continue;
    cols.push([unit ? `${name} (%)` : name, (e) => (holds(e, field) ? format(e[field]) : "")]);
  }
  const table = el("table");
  const head = el("tr");
  for (const [name] of cols) head.append(el("th", { scope: "col" }, name));
  table.append(head);
  for (const e of eps) {
    const row = el("tr");
    for (const [, f] of cols) row.append(el("td", {}, f(e)));
    table.append(row);
  }
  $("curve-table").textContent = "";
  $("curve-table").append(table);
  tabled = eps[eps.length - 1];
}
$("curve-figures").addEventListener("toggle", () => { if ($("curve-figures").open) curveTable(); });

// Draw, and say on the page what went wrong rather than let an exception
// stop the caller (the live page's poll, the log's refresh).
function showCurve() {
  try {
    drawCurve();
    describeCurve();
  } catch (e) {
    $("curve-note").textContent = "cannot draw the learning curve: " + e.message;
  }
}

// What the curve last drawn came from: a refresh of an unchanged log
// redraws nothing.
let curveSeen = null;

async function loadCurve() {
  let seen;
  try {
    const j = await getJSON("/api/curve?since=" + curve.points.length);
    const last = j.epochs.length ? JSON.stringify(j.epochs[j.epochs.length - 1]) : "";
    seen = `${j.total_points} ${j.epochs.length} ${last}`;
    append(curve.points, j.points);
    curve.epochs = j.epochs;
  } catch (e) {
    seen = "error: " + e.message;
  }
  // Only on a change: a note (the server's error, or a draw that failed)
  // stays while its cause does.
  if (seen !== curveSeen) {
    curveSeen = seen;
    $("curve-note").textContent = seen.startsWith("error: ") ? seen.slice(7) : "";
    showCurve();
  }
}

// A model file's `--metrics` log may still be growing (a run writing it:
// the server reads it again at each request), so an open page asks again
// every 5 s while it is in view, and less often when a read takes long
// (a log of 100,000 epochs is some 27 MB): at most ~5 % of the time.
const CURVE_MS = 5000;
let curveTimer = 0, curveAt = 0, curveBusy = false;
async function followCurve() {
  if (curveBusy) return;
  clearTimeout(curveTimer);
  curveBusy = true;
  let wait = CURVE_MS;
  try {
    // The first time even out of view (a tab opened in the background).
    if (!document.hidden || !curveAt) {
      const t0 = performance.now();
      await loadCurve();
      curveAt = Date.now();
      const took = performance.now() - t0;
      wait = Math.max(CURVE_MS, 20 * took);
      // The slowest read and the longest wait so far: how soon a new epoch
      // must show (tests read them; a busy machine slows the reads).
      const svg = document.getElementById("curve");
      svg.dataset.slowestMs = String(Math.max(Number(svg.dataset.slowestMs || 0), took));
      svg.dataset.longestWaitMs = String(Math.max(Number(svg.dataset.longestWaitMs || 0), wait));
    }
  } finally {
    curveBusy = false;
    curveTimer = setTimeout(followCurve, wait);
  }
}
// Back in view after a while hidden: the curve now, not at the next tick.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && curveAt && Date.now() - curveAt > CURVE_MS) followCurve();
});

// ---------------------------------------------------------------- test digits

function heat(t, diagonal) {
  // White to green on the diagonal, white to red off it.
  const a = Math.round(255 * (1 - t));
  return diagonal ? [a, Math.round(255 - 95 * t), a] : [Math.round(255 - 45 * t), a, a];
}

// Black or white, whichever contrasts more with `rgb` (WCAG relative
// luminance): one of the two is always above 4.5:1.
function textOn(rgb) {
  const lin = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const l = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
  return (1.05 / (l + 0.05)) > ((l + 0.05) / 0.05) ? "#fff" : "#000";
}

async function loadConfusion() {
  const j = await getJSON("/api/confusion");
  const k = j.classes, m = j.matrix;
  let maxDiag = 1, maxOff = 1;
  for (let i = 0; i < k; i++) for (let c = 0; c < k; c++) {
    if (i === c) maxDiag = Math.max(maxDiag, m[i][c]); else maxOff = Math.max(maxOff, m[i][c]);
  }
  // A grid (WAI-ARIA's pattern): a screen reader is told its cells can be
  // moved between and acted on, and which one is picked (aria-selected).
  const table = el("table", { role: "grid" });
  // Said to a screen reader, which reads a cell with its headers: the
  // heading's "(rows: true class, columns: predicted)" is not the table's.
  table.append(el("caption", { class: "sr-only" }, "test images by true class (rows) and predicted class (columns); the arrow keys move between cells, Enter lists a cell's images"));
  const head = el("tr");
  const corner = el("th");
  corner.append(el("span", { class: "sr-only" }, "true class, predicted class"));
  head.append(corner);
  for (let c = 0; c < k; c++) head.append(el("th", { title: cname(c), scope: "col", "aria-label": `predicted ${cname(c)}` }, String(c)));
  table.append(head);
  for (let i = 0; i < k; i++) {
    const row = el("tr");
    row.append(el("th", { title: cname(i), scope: "row", "aria-label": `true ${cname(i)}` }, String(i)));
    for (let c = 0; c < k; c++) {
      const n = m[i][c];
      // One tab stop for the whole matrix (the first cell); the arrow
      // keys move between cells, Enter or Space opens one.
      const td = el("td", { role: "gridcell", "data-label": i, "data-predicted": c, title: `true ${cname(i)}, predicted ${cname(c)}: ${n}`, tabindex: i === 0 && c === 0 ? 0 : -1 }, n ? String(n) : "");
      const rgb = heat(i === c ? n / maxDiag : Math.sqrt(n / maxOff), i === c);
      td.style.background = `rgb(${rgb.join(",")})`;
      td.style.color = textOn(rgb);
      const open = () => {
        digitsQuery = { label: i, predicted: c, page: 0 };
        announceFor = digitsQuery;
        // A matrix of many classes is taller than the screen: the list it
        // opens is brought into view.
        loadDigits()
          .then(() => { if (k > 20) $("digits-section").scrollIntoView({ block: "nearest" }); })
          .catch(noteDigits);
      };
      td.addEventListener("click", open);
      td.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); return; }
        const move = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
        if (!move) return;
        const [r, q] = [i + move[0], c + move[1]];
        const next = table.querySelector(`td[data-label='${r}'][data-predicted='${q}']`);
        if (!next) return;
        e.preventDefault();
        focusCell(next, table);
      });
      // The focused cell (by key, click or script) is the matrix's tab stop.
      td.addEventListener("focus", () => {
        for (const was of table.querySelectorAll("td[tabindex='0']")) was.tabIndex = -1;
        td.tabIndex = 0;
      });
      row.append(td);
    }
    table.append(row);
  }
  table.classList.toggle("many", k > 20);
  $("confusion").classList.toggle("many", k > 20);
  $("confusion").textContent = "";
  $("confusion").append(table);
  scored = j.version;
  // A run in progress is scored with the weights of the moment (the
  // button): when. A finished run's matrix is of its final weights, which
  // the server scored once, whenever the page asks.
  const over = phase === "done" || phase === "stopped";
  const when = model && model.live && !over ? `, scored at ${new Date().toLocaleTimeString()}` : "";
  // Name the test set: a model scored on another data set of the same
  // shape (the default data directory) would otherwise just look bad.
  const where = model && model.test && model.test.dir ? ` of the test set in ${written(model.test.dir)}` : "";
  // A score near guessing: most often a model of another data set (the
  // note's own "accuracy N% is" already stands before it).
  const note = j.note ? `: ${j.note.replace(/^accuracy [<>]?[0-9.]+% is /, "")}` : "";
  $("confusion-note").textContent = `accuracy ${percent2(j.accuracy)}\u00a0% (${j.correct} / ${j.images}${where}${when})${note}`;
}

// Focus a cell of the matrix. Past 20 classes the browser's own scroll
// would count a cell under the sticky row or column of class numbers as
// in view, hidden as it is (WCAG 2.4.11): the box is scrolled to clear
// them, by the corner cell's size, and then the window to show the cell.
function focusCell(td, table) {
  if (!table.classList.contains("many")) { td.focus(); return; }
  td.focus({ preventScroll: true });
  const box = $("confusion");
  const corner = table.rows[0].cells[0].getBoundingClientRect();
  const b = box.getBoundingClientRect();
  // Room for the focus ring (3 px outside the cell).
  const ring = 4;
  const left = b.left + box.clientLeft + corner.width + ring, top = b.top + box.clientTop + corner.height + ring;
  const right = b.left + box.clientLeft + box.clientWidth - ring, bottom = b.top + box.clientTop + box.clientHeight - ring;
  let r = td.getBoundingClientRect();
  if (r.left < left) box.scrollLeft -= left - r.left; else if (r.right > right) box.scrollLeft += r.right - right;
  if (r.top < top) box.scrollTop -= top - r.top; else if (r.bottom > bottom) box.scrollTop += r.bottom - bottom;
  r = td.getBoundingClientRect();
  if (r.top < ring) scrollBy(0, r.top - ring); else if (r.bottom > innerHeight - ring) scrollBy(0, r.bottom - innerHeight + ring);
}

async function loadDigits(retry) {
  const q = digitsQuery;
  let url = "/api/digits?per_page=24&page=" + q.page;
  if (q.label !== null) url += "&label=" + q.label + "&predicted=" + q.predicted;
  // The digits of the matrix shown: a live run's weights have moved on since.
  if (scored !== null) url += "&version=" + scored;
  let j;
  try {
    j = await getJSON(url);
  } catch (e) {
    // A page past the end of a list that a new scoring shortened: its
    // first page.
    if (e.status === 400 && q.page > 0 && e.message.startsWith("?page=")) {
      digitsQuery.page = 0;
      return loadDigits(retry);
    }
    // Scored again elsewhere (another tab): score again here, once.
    if (e.status !== 409 || retry) throw e;
    return loadEval(true);
  }
  $("digits-title").textContent = q.label === null
    ? `Test ${things()} the model gets wrong (${j.total})`
    : `Test ${things()} of class ${cname(q.label)} read as ${cname(q.predicted)} (${j.total})`;
  $("all-wrong").hidden = q.label === null;
  for (const td of document.querySelectorAll("#confusion td")) {
    const picked = q.label !== null && +td.dataset.label === q.label && +td.dataset.predicted === q.predicted;
    td.classList.toggle("picked", picked);
    if (picked) td.setAttribute("aria-selected", "true"); else td.removeAttribute("aria-selected");
  }
  $("page").textContent = j.pages ? `page ${j.page + 1} of ${j.pages}` : "none";
  if (announceFor === q) {
    $("digits-announce").textContent = `${$("digits-title").textContent}, ${$("page").textContent}`;
    announceFor = null;
  }
  // A button disabled under the keyboard's focus hands it to the other
  // (focus on a disabled button falls back to the page).
  const focused = document.activeElement;
  $("prev").disabled = j.page === 0;
  $("next").disabled = j.page + 1 >= j.pages;
  for (const [id, other] of [["prev", "next"], ["next", "prev"]]) {
    if (focused === $(id) && $(id).disabled && !$(other).disabled) $(other).focus();
  }
  const box = $("digits");
  box.textContent = "";
  // Tiles keep the images' shape within 56 × 56 CSS pixels, each side at
  // least 6 (a 1 × 300 image would be 0.2 pixels high: not drawn at all).
  const scale = 56 / Math.max(j.rows, j.cols);
  const side = (n) => Math.max(6, Math.round(n * scale)) + "px";
  for (const d of j.items) {
    // A screen reader names the tile by what it shows (its card's title
    // is only a tooltip).
    const c = el("canvas", { width: j.cols, height: j.rows, role: "img", "aria-label": `test image ${d.index}: ${cname(d.label)}, read as ${cname(d.predicted)}` });
    c.style.width = side(j.cols);
    c.style.height = side(j.rows);
    c.getContext("2d").putImageData(grayImage(c.getContext("2d"), d.pixels, j.cols, j.rows), 0, 0);
    const card = el("div", { class: "digit", title: `test image ${d.index}: ${cname(d.label)}, read as ${cname(d.predicted)}` });
    card.append(c);
    const wrong = d.label !== d.predicted;
    const text = el("span", { class: wrong ? "wrong" : "" }, `${d.label}→${d.predicted}`);
    card.append(text, el("br"), el("span", {}, percent(d.probability) + "%"));
    box.append(card);
  }
}

$("prev").addEventListener("click", () => { digitsQuery.page = Math.max(0, digitsQuery.page - 1); announceFor = digitsQuery; loadDigits().catch(noteDigits); });
$("next").addEventListener("click", () => { digitsQuery.page += 1; announceFor = digitsQuery; loadDigits().catch(noteDigits); });
// The button hides itself: the keyboard's focus goes to the list's title
// once it names the new list (which a screen reader then reads: nothing
// to announce besides).
$("all-wrong").addEventListener("click", () => {
  digitsQuery = { label: null, predicted: null, page: 0 };
  loadDigits().catch(noteDigits).finally(() => $("digits-title").focus());
});
function noteDigits(e) {
  $("digits-title").textContent = `Test ${things()}: ` + e.message;
  if (announceFor !== null) { $("digits-announce").textContent = $("digits-title").textContent; announceFor = null; }
}

async function loadEval(retry) {
  $("confusion-note").textContent = "scoring the test set…";
  try {
    await loadConfusion();
    await loadDigits(retry);
  } catch (e) {
    $("confusion-note").textContent = e.message;
    noteDigits(e);
  }
}
$("score").addEventListener("click", () => loadEval());

function loadWeights() {
  if (!model.tiles) {
    // 36 inputs are square, but not those of a model of 4 × 9 images.
    const im = model.image;
    const why = im && im.rows !== im.cols
      ? `the model was trained on ${im.rows} × ${im.cols} images, not square`
      : `the model's ${model.inputs} inputs are not a square image`;
    $("weights-note").textContent = `${why}: no tiles`;
    $("weights").hidden = true;
    $("tiles-key").hidden = true;
    return;
  }
  // Without a hidden layer the first layer's units are the classes.
  const perClass = model.widths.length === 2;
  $("per-class").hidden = !perClass;
  $("weights-note").textContent = `${model.tiles} of ${model.units} ${perClass ? "classes" : "units"}, ${model.side} × ${model.side}`;
  $("weights").src = "/api/weights.png?v=" + version;
}

// The tiles at a whole multiple of their pixels, up to 512 CSS pixels
// wide: pixelated at 1.1× (465 px shown at 512) some grid lines doubled.
$("weights").addEventListener("load", () => {
  const w = $("weights").naturalWidth;
  if (w) $("weights").style.width = Math.max(1, Math.floor(512 / w)) * w + "px";
});

// ---------------------------------------------------------------- live runs

// Every 2 s: the page is one more program on the training machine's cores,
// and this keeps its share near 1 % (README, "Overhead").
const POLL_MS = 2000;
let status = {};
// One poll, then the next in any case: an exception in between (a bug, a
// curve too large to draw) must not stop the page following the run.
async function poll() {
  let wait = POLL_MS;
  try {
    wait = await pollOnce();
  } finally {
    setTimeout(poll, wait);
  }
}

// One poll of /api/status; the time to wait before the next.
async function pollOnce() {
  try {
    status = await getJSON(`/api/status?since=${curve.points.length}&epochs_since=${curve.epochs.length}`);
  } catch (e) {
    if (leaving) return POLL_MS;
    // No answer: the server has stopped, and the run's terminal says why
    // (it ended, failed or was stopped). A server back on this port
    // (another run) reloads the page. An answer that is an error is shown.
    // Gone, nothing is left to score the test set with.
    if (e.status === undefined) $("score").hidden = true;
    if (e.status !== undefined) $("status").textContent = e.message;
    else if (phase === "done") $("status").textContent = "the server has stopped (the run had finished)";
    else if (phase === "stopped") $("status").textContent = "the server has stopped (the run had stopped early, at --stop-after)";
    else {
      $("status").textContent = "the server has stopped: the run ended, failed or was interrupted (its terminal says which)";
      $("model").textContent = `${model.name} · the run, no longer served`;
      // Nothing is left to score with: the note must not offer it.
      if ($("confusion-note").textContent === UNSCORED) {
        $("confusion-note").textContent = "the run ended before the test set was scored, and nothing is served to score it with: its terminal says what it saved, which simplenn eval scores (a model or a checkpoint)";
      }
      // The bar of a run that will not go on.
      $("progress").hidden = true;
    }
    if (e.status !== undefined) {
      // An answer, if an error: the server is there.
      gone(false);
      pollOnce.misses = 0;
      return 3000;
    }
    gone(true);
    // Asked again (a server back on this port reloads the page), less
    // often the longer it has been gone: 3 s, 6 s, … up to 30 s.
    pollOnce.misses = (pollOnce.misses || 0) + 1;
    return Math.min(30000, 3000 * 2 ** (pollOnce.misses - 1));
  }
  pollOnce.misses = 0;
  gone(false);
  const s = status;
  // Over: finished, or stopped early at --stop-after (its checkpoint resumes it).
  const stopped = s.phase === "stopped";
  const done = s.phase === "done" || stopped;
  // Served again after a miss (a busy machine, not a stopped server).
  if (!done) $("model").textContent = `${model.name} · the run in progress`;
  const scored = `test accuracy ${percent2(s.test_accuracy)}\u00a0%`;
  $("status").textContent = stopped
    ? `training stopped after epoch ${s.epochs_done} of ${s.epochs} (--stop-after; resume from its checkpoint): ${scored}`
    : done
      ? `training done: ${scored}`
      : `epoch ${s.epoch} of ${s.epochs}, step ${s.step} of ${s.total_steps}`;
  $("progress").hidden = false;
  const share = 100 * s.step / Math.max(1, s.total_steps);
  $("progress-bar").style.width = share.toFixed(1) + "%";
  $("progress").setAttribute("aria-valuenow", share.toFixed(0));
  if (s.new_points.length || s.new_epochs.length) {
    append(curve.points, s.new_points);
    append(curve.epochs, s.new_epochs);
    showCurve();
  }
  if (s.version !== version) {
    version = s.version;
    schedule(); // the pad answers with the latest weights
    // The tiles are a large PNG: every 10 s at most while training.
    const now = Date.now();
    if (done || !poll.weightsAt || now - poll.weightsAt > 10000) { loadWeights(); poll.weightsAt = now; }
  }
  if (done && phase !== s.phase) {
    $("model").textContent = `${model.name} · the ${stopped ? "stopped" : "finished"} run`;
    if (model.test) loadEval();
  }
  // Read out at a change of phase only (the line's step count changes at
  // every poll).
  if (phase !== s.phase && s.phase !== "starting") $("phase-announce").textContent = $("status").textContent;
  phase = s.phase;
  $("score").hidden = done;
  return done ? 5000 : POLL_MS;
}

// A model file's page asks only whether its server is still there (or
// another now, which reloads the page): every 30 s.
async function watch() {
  try {
    await getJSON("/api/status");
    $("status").textContent = "";
    gone(false);
  } catch (e) {
    if (e.status === undefined && !leaving) {
      $("status").textContent = STOPPED;
      gone(true);
    }
  }
  setTimeout(watch, 30000);
}

// A server gone is said where the page is being read, not only in the
// header scrolled out of view: the status line then sits at the bottom
// of the window.
function gone(yes) {
  if (yes && !document.body.classList.contains("server-gone")) $("phase-announce").textContent = $("status").textContent;
  $("status").classList.toggle("gone", yes);
  document.body.classList.toggle("server-gone", yes);
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    model = await getJSON("/api/model");
  } catch (e) {
    $("model").textContent = e.message;
    return setTimeout(start, 500);
  }
  $("model").textContent = `${model.name} · ${written(model.source)}`;
  $("sees-side").textContent = model.side ? `${model.side} × ${model.side}` : "not square";
  // A drawing can only be prepared for a square input (the API says 409):
  // the pad gives way to a note saying so.
  if (!model.side) {
    $("draw-row").hidden = true;
    $("draw-title").textContent = "No drawing pad for this model";
    $("draw-note").textContent = model.image
      ? `drawings are prepared as MNIST's digits were, for square images, and this model reads images of ${model.image.rows} × ${model.image.cols}; send it images of that shape, unchanged, with simplenn predict --as-is or POST /api/predict?as_is=1`
      : `the model takes ${model.inputs} inputs, which is not a square image, and its file does not say the images' shape: score it with simplenn eval on IDX data, or record the shape in the file (metadata simplenn.image = "ROWSxCOLS")`;
    $("draw-note").hidden = false;
  }
  // A model with names is of other things than digits.
  if (!ofDigits() && model.side) $("draw-title").textContent = "Draw one of its classes";
  buildBars(model.classes);
  clearPad();
  $("digits-title").textContent = `Test ${things()} the model gets wrong`;
  if (!model.test) {
    // No test set: nothing to score or list (the API would answer 404).
    $("confusion-note").textContent = model.test_note || "no test set";
    $("digits-title").textContent = `Test ${things()}: no test set (see the confusion matrix's note)`;
    for (const id of ["prev", "next", "score"]) $(id).disabled = true;
  }
  if (model.live) {
    if (model.test) {
      $("confusion-note").textContent = UNSCORED;
      // Nothing is listed until a matrix is scored: its images are listed.
      $("prev").disabled = $("next").disabled = true;
    }
    poll();
  } else {
    version = 0;
    if (model.metrics) followCurve();
    else {
      $("curve-note").textContent = "no learning curve: serve with --metrics LOG (the log a training run wrote with --metrics) to draw one";
      // No empty box above the note.
      $("curve").style.display = "none";
      document.querySelector(".legend").hidden = true;
    }
    loadWeights();
    if (model.test) loadEval();
    setTimeout(watch, 30000);
  }
}
start();
