"use strict";
// smartscope label: keyboard labelling of a crop pool. Every request carries the session token.
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const PAGE = 24;
let classes = [], junk = "junk", cards = [], cursor = 0, pending = 0;
let queue = Promise.resolve();

function api(path, body) {
  const opts = body === undefined
    ? { headers: { "X-Token": TOKEN } }
    : { method: "POST", headers: { "X-Token": TOKEN, "Content-Type": "application/json" },
        body: JSON.stringify(body) };
  return fetch(path, opts).then(r => r.json().then(j => {
    if (!r.ok) throw new Error(j.error || String(r.status));
    return j;
  }));
}

// Requests run one after another, in key order; body[data-pending] counts those not done yet.
function enqueue(fn) {
  pending++;
  document.body.dataset.pending = pending;
  queue = queue.then(fn).catch(e => say("error: " + e.message)).finally(() => {
    pending--;
    document.body.dataset.pending = pending;
  });
}

function say(text) { document.getElementById("status").textContent = text; }

function showState(s) {
  if (!s || !s.counts) return;
  classes = s.classes; junk = s.junk;
  const el = document.getElementById("classes");
  el.replaceChildren();
  classes.forEach((c, k) => el.append(tag("span", null, [tag("b", null, [String(k + 1)]), " " + c +
    " (" + s.counts[c] + ")"])));
  el.append(tag("span", null, [tag("b", null, ["0"]), " " + junk + " (" + s.counts[junk] + ")"]));
  document.getElementById("progress").textContent =
    s.labelled + " / " + s.pool + " labelled, ordered by " + s.ordered_by;
}

function tag(name, cls, children) {
  const el = document.createElement(name);
  if (cls) el.className = cls;
  (children || []).forEach(c => el.append(c));
  return el;
}

function img(id, cls) {
  if (!id) return tag("div", "ctx none");
  const el = tag("img", cls);
  el.src = "/crop/" + encodeURIComponent(id) + ".png?token=" + encodeURIComponent(TOKEN);
  el.alt = id;
  return el;
}

function render(page) {
  showState(page);
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  cards = []; cursor = 0;
  page.rows.forEach((row, r) => {
    const known = row.predicted && classes.includes(row.predicted);
    const title = row.predicted
      ? "predicted " + row.predicted + (known ? " - Enter confirms the row" : "") : "";
    const box = tag("div", "row", [tag("h2", null, [title]), tag("div", "cards")]);
    box.dataset.predicted = row.predicted || "";
    row.cards.forEach(c => {
      const cap = tag("div", "cap", [c.id + (c.confidence !== null ? " " +
        c.predicted + " " + c.confidence.toFixed(2) : "")]);
      const lab = tag("div", "lab");
      const el = tag("div", "card", [tag("div", "imgs", [img(c.previous, "ctx"), img(c.id, "main"),
        img(c.next, "ctx")]), cap, lab]);
      el.dataset.id = c.id;
      box.lastChild.append(el);
      cards.push({ id: c.id, row: r, predicted: row.predicted, el: el, lab: lab, done: false });
    });
    grid.append(box);
  });
  if (!cards.length) say("Every crop of the pool has a label or was skipped: nothing left.");
  else say("");
  mark();
}

function mark() {
  cards.forEach((c, k) => c.el.classList.toggle("current", k === cursor));
  document.querySelectorAll(".row").forEach((el, r) =>
    el.classList.toggle("current", cards[cursor] !== undefined && cards[cursor].row === r));
  if (cards[cursor]) cards[cursor].el.scrollIntoView({ block: "nearest" });
}

function loadPage() { return api("/api/page?n=" + PAGE).then(render); }

function advance() {
  let k = cards.findIndex((c, i) => i > cursor && !c.done);
  if (k < 0) k = cards.findIndex(c => !c.done);
  if (k < 0) { enqueue(loadPage); return; }
  cursor = k; mark();
}

function done(c, text) { c.done = true; c.el.classList.add("done"); c.lab.textContent = text; }

function assign(label) {
  const c = cards[cursor];
  if (!c) return;
  done(c, label);
  enqueue(() => api("/api/label", { ids: [c.id], label: label }).then(showState));
  advance();
}

function confirmRow() {
  const c = cards[cursor];
  if (!c || !c.predicted || !classes.includes(c.predicted)) return;
  const row = cards.filter(x => x.row === c.row && !x.done);
  row.forEach(x => done(x, c.predicted));
  enqueue(() => api("/api/label", { ids: row.map(x => x.id), label: c.predicted }).then(showState));
  advance();
}

function skip() {
  const c = cards[cursor];
  if (!c) return;
  done(c, "skipped");
  enqueue(() => api("/api/skip", { id: c.id }));
  advance();
}

function undo() {
  enqueue(() => api("/api/undo", {}).then(r => { showState(r); if (r.undone) return loadPage(); }));
}

document.addEventListener("keydown", ev => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key;
  if (k >= "1" && k <= "9") { if (Number(k) <= classes.length) assign(classes[Number(k) - 1]); }
  else if (k === "0" || k === "x") assign(junk);
  else if (k === "Enter") confirmRow();
  else if (k === " " || k === "s" || k === "ArrowRight") skip();
  else if (k === "ArrowLeft") { if (cursor > 0) { cursor--; mark(); } }
  else if (k === "z" || k === "Backspace") undo();
  else return;
  ev.preventDefault();
});

enqueue(loadPage);
