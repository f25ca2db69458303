/**
 * The console's only stylesheet and script, served from memory under a content hash (cacheable for a year, and
 * allowed by a Content-Security-Policy with no inline script or style). The script does three things: confirm
 * each control before it is sent, follow live changes (server-sent events) by re-fetching the page's server-rendered
 * main part, and load each step's chart.
 */
import { createHash } from 'node:crypto';

export const CSS = `
:root { --fg:#1d2330; --muted:#5d6675; --line:#d9dee7; --bg:#f6f7f9; --ok:#1a7f37; --bad:#c0262d; --warn:#9a6700; --run:#0b62d6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header.top { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem; background:#161b26; color:#fff; }
header.top a { color:#dfe6f3; text-decoration:none; } header.top a:hover { color:#fff; }
header.top .brand { font-weight:700; color:#fff; }
header.top .who { margin-left:auto; color:#aab4c5; }
header.top form { display:inline; }
main { padding:1rem 1.2rem 3rem; max-width:1280px; }
h1 { font-size:1.35rem; margin:.2rem 0 .8rem; } h2 { font-size:1.05rem; margin:1.4rem 0 .5rem; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th,td { text-align:left; padding:.35rem .55rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-weight:600; font-size:.85rem; color:var(--muted); }
tr:hover td { background:#fafbfc; }
code, .mono { font-family: ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.88em; }
.badge { display:inline-block; padding:.05rem .45rem; border-radius:.6rem; font-size:.8rem; font-weight:600; background:#e7eaf0; }
.badge.succeeded,.badge.passed,.badge.sent,.badge.holds { background:#dcf5e3; color:var(--ok); }
.badge.failed,.badge.escalated { background:#fde2e1; color:var(--bad); }
.badge.running,.badge.queued { background:#dde9fd; color:var(--run); }
.badge.cancelled,.badge.skipped,.badge.resolved,.badge.unknown { background:#f3ecd9; color:var(--warn); }
.muted { color:var(--muted); } .over { color:var(--bad); font-weight:600; } .within { color:var(--ok); }
.bar { display:inline-block; width:90px; height:8px; background:#e7eaf0; border-radius:4px; vertical-align:middle; overflow:hidden; }
.bar span { display:block; height:100%; background:var(--ok); } .bar span.over { background:var(--bad); }
.bar span.w0{width:0}.bar span.w1{width:10%}.bar span.w2{width:20%}.bar span.w3{width:30%}.bar span.w4{width:40%}.bar span.w5{width:50%}.bar span.w6{width:60%}.bar span.w7{width:70%}.bar span.w8{width:80%}.bar span.w9{width:90%}.bar span.w10{width:100%}
form.filters { display:flex; gap:.6rem; flex-wrap:wrap; align-items:end; margin-bottom:.8rem; }
form.filters label { display:flex; flex-direction:column; font-size:.8rem; color:var(--muted); }
input,select,button { font:inherit; padding:.3rem .5rem; border:1px solid #b8c0cc; border-radius:4px; background:#fff; }
button { cursor:pointer; background:#eef1f5; } button.danger { background:var(--bad); color:#fff; border-color:var(--bad); }
button.primary { background:var(--run); color:#fff; border-color:var(--run); }
.controls { display:flex; gap:1rem; flex-wrap:wrap; margin:.6rem 0 1rem; }
.controls form { display:flex; gap:.4rem; align-items:center; background:#fff; border:1px solid var(--line); padding:.45rem .6rem; border-radius:6px; }
.banner { padding:.5rem .8rem; border-radius:6px; margin-bottom:.8rem; }
.banner.paused { background:#fff4d6; border:1px solid #e8c96a; } .banner.error { background:#fde2e1; border:1px solid #f0a3a0; }
.banner.ok { background:#dcf5e3; border:1px solid #9bd3ac; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; background:#fff; border:1px solid var(--line); padding:.6rem .8rem; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; }
ol.timeline { list-style:none; padding:0; margin:0; border-left:3px solid var(--line); }
ol.timeline > li { position:relative; margin:0 0 .8rem .9rem; background:#fff; border:1px solid var(--line); border-radius:6px; padding:.5rem .7rem; }
ol.timeline > li::before { content:""; position:absolute; left:-1.38rem; top:.8rem; width:.7rem; height:.7rem; border-radius:50%; background:#9aa4b2; }
ol.timeline > li.k-step.s-passed::before { background:var(--ok); } ol.timeline > li.k-step.s-failed::before, ol.timeline > li.k-outcome.s-failed::before, ol.timeline > li.k-outcome.s-escalated::before { background:var(--bad); }
ol.timeline > li.k-step.s-running::before { background:var(--run); } ol.timeline > li.k-outcome.s-succeeded::before { background:var(--ok); }
.entry-head { display:flex; gap:.6rem; align-items:baseline; } .entry-head time { color:var(--muted); font-size:.82rem; margin-left:auto; }
ul.details { margin:.3rem 0 0; padding-left:1.1rem; } ul.details li { white-space:pre-wrap; word-break:break-word; }
.chart { margin-top:.4rem; min-height:20px; } .chart-svg { max-width:100%; height:auto; background:#fbfcfd; border:1px solid var(--line); }
.chart-svg .axis { stroke:#9aa4b2; } .chart-svg .tick, .chart-svg .empty { font-size:11px; fill:var(--muted); }
.chart-svg .window { fill:#0b62d6; fill-opacity:.08; } .chart-svg .threshold { stroke:var(--bad); stroke-dasharray:6 4; }
.chart-svg .threshold-label { font-size:11px; fill:var(--bad); } .chart-svg .series { fill:none; stroke-width:2; }
.chart-svg .s0{stroke:#0b62d6}.chart-svg .s1{stroke:#8250df}.chart-svg .s2{stroke:#bf8700}.chart-svg .s3{stroke:#1a7f37}.chart-svg .s4{stroke:#cf222e}.chart-svg .s5{stroke:#57606a}
.chart-svg .observed { fill:#fff; stroke:var(--fg); stroke-width:2; }
.login { max-width:380px; margin:4rem auto; background:#fff; border:1px solid var(--line); border-radius:8px; padding:1.2rem 1.4rem; }
.login label { display:block; margin:.6rem 0; } .login input { width:100%; }
.pager { margin-top:.8rem; display:flex; gap:1rem; }
.counts { display:flex; gap:.6rem; flex-wrap:wrap; margin-bottom:1rem; } .counts .count { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.4rem .8rem; }
.counts .count b { font-size:1.2rem; display:block; }
`;

export const JS = `
'use strict';
document.addEventListener('submit', function (e) {
  var form = e.target;
  var q = form.getAttribute('data-confirm');
  if (q && !window.confirm(q)) { e.preventDefault(); }
});
var loaded = {};
function loadCharts(root) {
  root.querySelectorAll('[data-chart]').forEach(function (el) {
    var src = el.getAttribute('data-chart');
    if (loaded[src] !== undefined) { el.innerHTML = loaded[src]; return; }
    fetch(src, { credentials: 'same-origin' }).then(function (r) { return r.ok ? r.text() : ''; }).then(function (svg) {
      if (svg) { loaded[src] = svg; el.innerHTML = svg; el.setAttribute('data-loaded', 'true'); }
    });
  });
}
function refresh() {
  return fetch(location.href, { credentials: 'same-origin', headers: { 'X-Fragment': 'main' } }).then(function (r) {
    if (!r.ok) return;
    return r.text().then(function (text) {
      var main = document.querySelector('main');
      main.innerHTML = text;
      loadCharts(main);
    });
  });
}
var main = document.querySelector('main');
loadCharts(document);
var live = main && main.getAttribute('data-live');
if (live && window.EventSource) {
  var first = true;
  var es = new EventSource(live);
  // The first event describes what the page was rendered from, unless the run moved on between the render and
  // the stream's start (a cancel's redirect racing the run's end): a run page compares the state it shows.
  es.addEventListener('change', function (e) {
    if (first) {
      first = false;
      var shown = document.querySelector('h1 .badge');
      var seen = null;
      try { seen = JSON.parse(e.data).state; } catch (err) { seen = null; }
      if (!seen || !shown || shown.textContent === seen) return;
    }
    refresh();
  });
  es.addEventListener('end', function () { es.close(); refresh(); });
}
`;

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);
export const CSS_PATH = `/static/console-${hash(CSS)}.css`;
export const JS_PATH = `/static/console-${hash(JS)}.js`;
