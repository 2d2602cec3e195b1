// taskd dashboard. Plain script, no framework, nothing from another origin.
// Every string that comes from a task goes into the page through textContent or an
// attribute set by script, never through HTML parsing; every text of the server's or a client's
// (a task's, a queue's or a span's name, a message, an error's detail) through clientText() or,
// where only text goes, clientPlain(), which show its bidirectional controls instead of applying them.
'use strict';

const PAGE_SIZE = 50;
// The periods of the page's own timers (ms): the queues and /metrics read again, a refused stream
// tried again, a stream let go out of sight, a read given up, a stream given up that has been
// silent (taskd pings at least every 15 s: two pings and some). A test may set shorter ones as
// window.taskdPeriods before the page loads (read once, here): the page does the same things, sooner.
const PERIODS = Object.assign({poll: 5000, retry: 5000, park: 10000, read: 10000, silence: 35000}, window.taskdPeriods);
const METRICS_EVERY_MS = PERIODS.poll;
// closer, two /metrics samples are one (sampleMetrics()): a tenth of the poll, at most the half
// second that keeps the first rate's sample, 2 s after loading, apart from the page's first
const SAMPLES_APART_MS = Math.min(METRICS_EVERY_MS / 10, 500);
const CHART_WINDOW_MS = 5 * 60 * 1000;
const STATUSES = ['CREATED', 'IN_PROGRESS', 'COMPLETED', 'FAILED'];
const FINAL = new Set(['COMPLETED', 'FAILED']);
const REMOVED_KEEP = 1000; // removed task ids remembered

const $ = (sel) => document.querySelector(sel);

/* ---- DOM helpers ------------------------------------------------------ */

// el('td', {class: 'num', dataset: {id}}, child, 'text', ...): children are nodes or text.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function chip(status) {
  return el('span', {class: 'chip', dataset: {status}, text: status.replace('_', ' ').toLowerCase()});
}

// An id shown with its time-ordered head dimmed and its random tail readable.
function idNode(id) {
  const cut = Math.max(0, id.length - 12);
  return el('span', {title: id}, el('span', {class: 'id-head', text: id.slice(0, cut)}),
            el('span', {class: 'id-tail', text: id.slice(cut)}));
}

function ago(seconds) {
  if (!isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

// n and its word, in the plural but for one: plural(2, 'task') is '2 tasks'.
function plural(n, word) {
  return n + ' ' + word + (n === 1 ? '' : 's');
}

function ms(v) {
  if (v < 1) return v.toFixed(2) + ' ms';
  if (v < 1000) return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ms';
  return (v / 1000).toFixed(v < 10000 ? 2 : 1) + ' s';
}

function when(unixSeconds) {
  if (typeof unixSeconds !== 'number') return ''; // null: not yet (a CREATED task's update)
  const d = new Date(unixSeconds * 1000);
  return isNaN(d) ? '' : d.toLocaleString();
}

// JSON.parse for display only, except that an integer past 2^53 keeps its digits (shown as
// sent, not rounded), where the browser gives a reviver the source text and has JSON.rawJSON
// (Chromium 114+, Firefox 135+); elsewhere it is rounded as JSON.parse rounds it. Not for
// values the page computes with: such an integer becomes an object. Text without a run of 16
// digits has no such integer, and is parsed without the reviver.
const exactInts = typeof JSON.rawJSON === 'function';
function parseExact(text) {
  if (!exactInts || !/\d{16}/.test(text)) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === 'number' && !Number.isSafeInteger(value) && context &&
        /^-?\d+$/.test(context.source) ? JSON.rawJSON(context.source) : value);
}

// The members of the JSON object in text, each as the text of its value: name -> text. For
// the server's answers, which are valid JSON; a value's text is as the server wrote it.
function membersOf(text) {
  const members = new Map();
  let i = skipSpace(text, 0);
  if (text[i] !== '{') return members;
  i = skipSpace(text, i + 1);
  while (text[i] === '"') {
    const nameEnd = stringEnd(text, i);
    const name = JSON.parse(text.slice(i, nameEnd));
    const start = skipSpace(text, skipSpace(text, nameEnd) + 1); // after the colon
    const end = valueEnd(text, start);
    members.set(name, text.slice(start, end));
    i = skipSpace(text, end);
    if (text[i] !== ',') break;
    i = skipSpace(text, i + 1);
  }
  return members;
}

function skipSpace(text, i) {
  while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  return i;
}

// The index after the string whose opening quote is at i.
function stringEnd(text, i) {
  for (i++; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92) i++; // a backslash: the character after it is escaped
    else if (c === 34) return i + 1;
  }
  return i;
}

// The index after the value that starts at i.
function valueEnd(text, i) {
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      i = stringEnd(text, i) - 1;
      if (!depth) return i + 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (!depth) return i;
      if (!--depth) return i + 1;
    } else if (!depth && ', \t\r\n'.includes(c)) {
      return i;
    }
  }
  return i;
}

// JSON text indented by two spaces a level, as JSON.stringify(value, null, 2) writes it, in one
// pass over the text: its strings and numbers stay as they are.
function indentJson(text) {
  const out = [];
  let depth = 0;
  let from = 0; // the start of the text not yet copied
  const newline = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    let put = null;
    if (c === '"') {
      i = stringEnd(text, i) - 1;
      continue;
    } else if (c === '{' || c === '[') {
      const next = skipSpace(text, i + 1);
      if (text[next] === (c === '{' ? '}' : ']')) { // empty: {} or []
        out.push(text.slice(from, i), c + text[next]);
        i = next;
        from = i + 1;
        continue;
      }
      depth++;
      put = c + newline();
    } else if (c === '}' || c === ']') {
      depth--;
      put = newline() + c;
    } else if (c === ',') {
      put = ',' + newline();
    } else if (c === ':') {
      put = ': ';
    } else if (' \t\r\n'.includes(c)) {
      put = '';
    }
    if (put !== null) {
      out.push(text.slice(from, i), put);
      from = i + 1;
    }
  }
  out.push(text.slice(from));
  return out.join('');
}

// The bidirectional controls (embeddings, overrides, isolates) and marks (left-to-right,
// right-to-left, Arabic letter): in client text they could show "gnp.exe" as "exe.png", or
// "100-200" as "200-100", so the page shows them instead of applying them.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const hex4 = (c) => c.charCodeAt(0).toString(16).padStart(4, '0');

// JSON text with those controls written as \u escapes: the same JSON, its strings shown in
// their order. (In JSON text they can only be inside strings.)
function escapeControls(text) {
  return text.replace(BIDI_CONTROLS, (c) => '\\u' + hex4(c));
}

// Client text as nodes for el(): the text, with each of those controls a mark (U+202E).
function clientText(s) {
  s = String(s);
  const nodes = [];
  let last = 0;
  for (const m of s.matchAll(BIDI_CONTROLS)) {
    const code = 'U+' + hex4(m[0]).toUpperCase();
    nodes.push(s.slice(last, m.index),
               el('span', {class: 'ctl', title: 'a bidirectional control (' + code + '), shown, not applied', text: code}));
    last = m.index + 1;
  }
  nodes.push(s.slice(last));
  return nodes;
}

// The same for where only text goes, an attribute (a tooltip) or an <option>: each control
// written as its mark in brackets ([U+202E]).
function clientPlain(s) {
  return clientText(s).map((n) => (typeof n === 'string' ? n : '[' + n.textContent + ']')).join('');
}

// Data and result: up to this much JSON text is coloured by token; more is put in as one text,
// indented (a megabyte made hundreds of thousands of nodes and held the drawer for seconds).
const COLOUR_MAX_CHARS = 64 * 1024;
const jsonShown = new Map(); // pre -> the JSON text it shows

// A value of the server's answer, given as its text (undefined or 'null': none), into pre.
function showJson(pre, text) {
  if (text === 'null') text = undefined;
  if (jsonShown.has(pre) && jsonShown.get(pre) === text) return; // as it is shown
  jsonShown.set(pre, text);
  if (text !== undefined && text.length > COLOUR_MAX_CHARS) {
    pre.dataset.plain = '';
    pre.title = Math.round(text.length / 1024) + ' KiB of JSON: shown without colours';
    pre.textContent = escapeControls(indentJson(text));
    return;
  }
  delete pre.dataset.plain;
  pre.removeAttribute('title');
  jsonInto(pre, text === undefined ? undefined : parseExact(text));
}

// Pretty JSON as text nodes in spans, coloured by token.
function jsonInto(pre, value) {
  pre.replaceChildren();
  if (value === undefined) {
    pre.append(el('span', {class: 'note', text: 'none'}));
    return;
  }
  const text = escapeControls(JSON.stringify(value, null, 2));
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;
  let last = 0;
  for (let m; (m = re.exec(text));) {
    pre.append(text.slice(last, m.index));
    if (m[1]) {
      pre.append(el('span', {class: m[2] ? 'k' : 's', text: m[1]}));
      if (m[2]) pre.append(m[2]);
    } else {
      pre.append(el('span', {class: m[3] ? 'n' : 'l', text: m[0]}));
    }
    last = re.lastIndex;
  }
  pre.append(text.slice(last));
}

// Live updates draw rows anew, which would take the keyboard focus with them: the control that
// had it, a task's link (data-id) or a queue's Redrive button (data-queue), is found again among
// the new ones and given it back; if it is gone or disabled, fallback (a heading) takes it.
function keepFocus(box, fallback, redraw) {
  const had = document.activeElement;
  const sel = box.contains(had) ? focusKey(had) : null;
  redraw();
  if (!sel || box.contains(document.activeElement)) return;
  focusOn(box.querySelector(sel), fallback);
}

function focusKey(node) {
  if (node.matches('a[data-id]')) return 'a[data-id="' + CSS.escape(node.dataset.id) + '"]';
  if (node.matches('button[data-queue]')) return 'button[data-queue="' + CSS.escape(node.dataset.queue) + '"]';
  return null;
}

function focusOn(node, fallback) {
  const to = node && !node.disabled ? node : fallback;
  if (to) to.focus();
}

// message: the page's words around the server's (a queue's name, an error's detail)
function toast(message, bad) {
  // #toasts is the live region that says it: a toast of its own role too was a region in a region
  const t = el('div', {class: 'toast' + (bad ? ' bad' : '')}, ...clientText(message));
  $('#toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

/* ---- the API ---------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, detail, body) {
    super(typeof detail === 'string' ? detail : 'HTTP ' + status);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

// The banner says what the page cannot read: a read it makes again and again (api()'s `as`: the
// list, the queues) or its stream, that did not reach taskd or was refused, until that same one is
// answered otherwise (a failure the banner does not say, a 503 say, is said by that read: the
// list's toast, the queue table's line); a read of another says nothing of it. A read made once (a
// task's drawer, a search, the task types) or a write (a task created, a redrive) says its failure
// where it was asked for, and holds no banner that nothing would clear; the /metrics sample,
// polled, says only a 401 (the queues' read in the same poll says the rest). A 401, of any read but
// an outdated one or one sent with another token than the one held (api()), is said until the wait
// for a token is over (waitOver(): a token entered or, where the stream itself was refused, a look at
// it that finds taskd no longer asks for one): the banner and the token field stay, and the page
// waits (a stream that asked for one is not tried again). The stream's 401 takes back what the list
// and the queues said, which are read again once the wait is over. The first failure shows, and the
// banner, an alert read out each time it is written, is written when that changes.

// What the banner says of a read, or the stream, that does not reach taskd.
const UNREACHED = 'Cannot reach taskd at ' + location.host + ' — is it running? Retrying.';
const health = {
  failing: new Map(), // what failed ('list', 'queues', 'events'; 'auth': a token asked for) -> message
  shown: null, // the message the banner shows (null: hidden)
  fail(what, message) {
    this.failing.set(what, message);
    this.show();
  },
  ok(what) {
    if (this.failing.delete(what)) this.show();
  },
  show() {
    const first = this.failing.values().next();
    const message = first.done ? null : first.value;
    if (message === this.shown) return; // said already: the alert is not read out again
    this.shown = message;
    const b = $('#banner');
    b.hidden = message === null;
    b.replaceChildren(...clientText(message || '')); // a refusal gives the server's detail
  },
};

// With tokens configured (docs/auth.md) taskd answers 401 until the page sends one: the page
// asks for it, keeps it for this tab only and sends it with every request. The tab holds it in
// memory; sessionStorage keeps a copy for a reload of the tab. A browser that refuses the storage
// (its privacy settings blocking site data, or a proxy that lets the page be framed in a sandbox:
// its setter or the storage itself throws) leaves the tab its own copy, which it sends all the
// same, and asks for the token again on the next load.
function storedToken(key) {
  try {
    return sessionStorage.getItem(key) || '';
  } catch (e) {
    return ''; // storage refused
  }
}
const auth = {
  key: 'taskd.token',
  held: '', // the token this tab sends (kept in sessionStorage for a reload, as it allows)
  entered: 0, // the tokens entered in this tab
  get token() {
    return this.held;
  },
  set token(value) {
    this.held = value;
    this.entered++;
    try {
      if (value) sessionStorage.setItem(this.key, value);
      else sessionStorage.removeItem(this.key);
    } catch (e) {
      // storage refused: the tab sends the token it holds, and asks for it again on the next load,
      // not with a copy of a token entered before (a setter refused, removing may be allowed)
      try {
        sessionStorage.removeItem(this.key);
      } catch (e2) {
        // storage refused altogether: nothing is kept
      }
    }
  },
  // the headers of a request sent with token t (the one held, unless given)
  headers(extra = {}, t = this.token) {
    return t ? Object.assign({}, extra, {Authorization: 'Bearer ' + t}) : extra;
  },
  // What a request sent now goes with (its token, and the entry that gave it), for holds(): api()
  // and the looks at the stream judge by it whether a 401 is of the token held, or of another one,
  // entered since.
  sent() {
    return {token: this.held, entry: this.entered};
  },
  // Whether sent (sent()) is what a request sent now goes with: no token entered since. Another
  // entry is another token, the same text too: entered again, it may be one taskd has learnt
  // meanwhile (its token file read again), and a 401 of a request sent before it says nothing of it.
  holds(sent) {
    return sent.entry === this.entered;
  },
  ask() {
    $('#token-form').hidden = false;
    // a stream that asked for one is not tried again until a token is entered, or taskd asks for none
    sayConn();
  },
};
auth.held = storedToken(auth.key); // a reload's

// taskd asked for a token and the page waits for one (the token form is shown).
function waitingForToken() {
  return !$('#token-form').hidden;
}

// Whether the banner says a failed read of api()'s made with `as` (an ApiError's status): taskd not
// reached (0), or a refusal (401, 403).
function bannerSays(status) {
  return !status || status === 401 || status === 403;
}

function refusal(status, detail) {
  if (status === 401) {
    auth.ask();
    return auth.token ? 'taskd refused the token (401: ' + detail + '). Enter another one below.'
                      : 'taskd asks for a bearer token (401: ' + detail + '). Enter it below; it is ' +
                            'kept for this tab only.';
  }
  if (status === 403) return 'taskd refused the request (403: ' + detail + ').';
  return null;
}

// While the page waits for a token because its stream was refused with a 401, it looks at the
// stream again every retry period, one look at a time and nothing else read meanwhile: taskd
// restarted without tokens, or with them removed, answers it otherwise than 401, and the page
// reads everything again by itself (unasked()). Only the stream's own refusal starts the looks:
// behind a proxy asking for a token on some routes only, a stream that works says nothing of a
// route that asks, and reading everything again would only be asked again. Tabs that share a
// stream (see share) share its looks: the tab that reads it for them looks, and tells them what
// it found, as it passes its events on. With no tab of its group in sight (alone, out of sight)
// a tab does not look; one shown has it look at once. A look still refused whose detail the page
// has not said (the first read of why was given up, its status's text said instead, or taskd's
// words changed) says it: once, the looks after it finding what is said.
let streamAsks = false; // the stream was refused with a 401, and the page waits for a token
let askedWhy = ''; // the detail of that 401 (taskd's, or a proxy's), which a tab that joins is told
let tokenLook = null; // the next look's timer, from when it is set until the look is answered
function lookWhileWaiting(ms = PERIODS.retry) {
  if (tokenLook || !looksHere()) return;
  tokenLook = setTimeout(async () => {
    // none once a token was entered (all was read again with it), nor by a tab that reads the
    // stream no more (it left its group and joined it again, another tab reading it), nor while
    // no tab is in sight
    if (!looksHere() || !(await anyShown()) || !looksHere()) { // again: the wait may have changed it
      tokenLook = null;
      return;
    }
    const look = await lookAtStream('/events');
    tokenLook = null;
    if (!streamAsks) return; // a token entered meanwhile, with which all was read again
    if (!auth.holds(look.sent)) {
      lookWhileWaiting(); // the look was of the token before: the next one is of this one's
    } else if (look.status && look.status !== 401) {
      share.post({kind: 'unasked'});
      unasked();
    } else if (look.status === 401 && !look.cut && look.detail !== askedWhy) {
      sayRefused(look); // and looks on
    } else {
      lookWhileWaiting();
    }
  }, ms);
}

// This tab makes the looks: its stream asks for a token, and it reads the stream, its own or its
// group's.
function looksHere() {
  return streamAsks && (!share.name || share.leader);
}

// A token entered: everything is read again with it.
function useToken(e) {
  e.preventDefault();
  const input = $('#token-input');
  const token = input.value.trim();
  if (!token) return;
  if (!/^[\x21-\x7e]{1,4096}$/.test(token)) { // what an Authorization header can carry
    input.value = '';
    health.fail('auth', 'A token is 1 to 4096 printable ASCII characters, without blanks; ' +
                        'that one is not. Enter it again below.');
    auth.ask();
    return;
  }
  auth.token = token;
  input.value = '';
  waitOver();
  loadTypes();
  refreshDetailSoon(); // the task open in the drawer, whose read may have been refused
  // the tabs that share a stream share a token: this tab joins those of its own
  leaveGroup();
  beginEvents();
}

// taskd asks for no token now (a look at the stream found it, this tab's or its group's): the
// tabs stay in their group, and the one that reads the stream opens it again, which has every
// tab read its list and types again, as after any gap (streamOpened()).
function unasked() {
  waitOver();
  if (share.name && !share.leader) return;
  streamGap = true;
  connect();
}

// The page no longer waits for a token: the field and its banner go, and the queues and /metrics
// are read again.
function waitOver() {
  $('#token-form').hidden = true;
  streamAsks = false;
  health.ok('auth');
  loadQueues();
  sampleMetrics();
}

// Reads of one thing of which the newest alone counts: two under way at once may be answered out of
// order, and the older answer, taken last, would put back what the newer one replaced. Each call
// begins a read and gives its check, true until a newer read of the same begins.
function newestRead() {
  let begun = 0;
  return () => {
    const seq = ++begun;
    return () => seq === begun;
  };
}

// read(signal), a fetch() and the reading of its answer, given up after ms (its signal aborted):
// left unanswered (taskd stopped, a proxy holding the request), it fails as a read that does not
// reach taskd. What it leaves unread (a stream's body) is let go once it ends.
async function bounded(ms, read) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  try {
    return await read(ctl.signal);
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
}

// What a write refused with a 401 says when it was sent before the token now held was entered.
const AFTER_ENTRY = (detail) => 'It was sent before the token now held was entered, and taskd refused it (401: ' +
                                detail + '). Try again: the token goes with it now.';

// fetch() + JSON; throws ApiError. A 401 shows the token field and its banner. as: the name of a
// read the page makes again (health): taskd not reached or a 403 shows the banner, and any other
// answer takes back what it had said. A read without one (made once, or a write: its failure is
// said where it was asked for, or by another read) says nothing else. current: the check of a read
// of which the newest alone counts (newestRead()): outdated once answered, the read says nothing,
// its 401 neither (the newer read says what it finds). A 401 answering a request sent before the
// token now held was entered (auth.holds(): with another token, with none, or with the same one
// entered again, which taskd may have learnt since) is of what it was sent with, and says nothing
// either: a read is made again with the token held (unless outdated meanwhile), and a write's
// refusal is said by its caller alone, in AFTER_ENTRY's words. A read (GET) is bounded by
// PERIODS.read, a write is not: given up, it may have been done all the same.
async function api(path, {method = 'GET', body, as, current = () => true} = {}) {
  const sent = auth.sent();
  const send = async (signal) => {
    const r = await fetch(path, {
      method,
      headers: auth.headers(body === undefined ? {} : {'Content-Type': 'application/json'}, sent.token),
      body,
      cache: 'no-store',
      signal,
    });
    return [r, await r.text()];
  };
  let r, text;
  try {
    [r, text] = await (method === 'GET' ? bounded(PERIODS.read, send) : send());
  } catch (e) {
    if (as && current()) health.fail(as, UNREACHED);
    throw new ApiError(0, 'network error');
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  const detail = r.ok ? null : data && data.detail !== undefined ? data.detail : r.statusText;
  const said = typeof detail === 'string' ? detail : r.statusText;
  const another = r.status === 401 && !auth.holds(sent); // sent before the token held was entered
  if (another && method === 'GET' && current()) return api(path, {as, current});
  const heard = current() && !another; // an outdated read says nothing
  if (r.status === 401 && heard) health.fail('auth', refusal(401, said)); // and the token field shows
  const what = heard && as;
  if (what && r.status === 403) health.fail(what, refusal(403, said));
  else if (what) health.ok(what); // a 401 is said as the token asked for
  if (!r.ok) {
    const e = new ApiError(r.status, detail, data);
    // a write's, said by its caller: taskd's words alone ("a token is required") would say that
    // no token is held, where one is, and not that the write, refused, can be sent again with it
    if (another) e.message = AFTER_ENTRY(said);
    throw e;
  }
  return {status: r.status, data, text, headers: r.headers};
}

/* ---- state ------------------------------------------------------------ */

const state = {
  status: '',       // the status filter ('' for all)
  type: '',         // the task_type filter
  tokens: [''],     // next_token of each page seen; the last is the current page's
  next: null,       // the current page's next_token
  rows: new Map(),  // id -> {task, tr}
  newCount: 0,      // inserts seen while not on the first page
  detail: null,     // the open task's id
  shown: null,      // the id of the task the drawer's facts, trace and data are of
  removed: new Map(), // id -> removal time (Unix seconds, NaN if unknown) of tasks seen removed
  types: [],        // the configured task types
  loadFailed: false, // the last listing failed: where that was said ('banner', 'toast')
  during: null,     // while a listing is read: the stream's task events meanwhile, {seq, ev}
  listSeq: null,    // the change log's position the last listing reflects (X-Last-Event-ID)
  taken: null,      // the id of the last task event taken, or the last listing's position
};

// An event id of the change stream (a change log position: decimal digits, up to 18, more
// than a Number holds exactly) as a BigInt, so that ids compare as numbers, exactly; null for
// none or anything else.
function eventId(v) {
  if (typeof v === 'bigint') return v >= 0n ? v : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  return typeof v === 'string' && /^\d{1,18}$/.test(v) ? BigInt(v) : null;
}

// The latest of some ids (null ones left out), or null.
function latestId(...ids) {
  return ids.reduce((a, b) => (b === null || (a !== null && a >= b) ? a : b), null);
}

// An id as last_event_id, or null.
function idText(id) {
  return id === null || id === undefined ? null : String(id);
}

// An id for the other tabs: a Number where one holds it exactly, as a tab still running an
// older page reads it, else its digits; null for none.
function idMessage(id) {
  if (id === null || id === undefined) return null;
  return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : String(id);
}

/* ---- tasks table ------------------------------------------------------ */

function taskMatches(t) {
  return (!state.status || t.status === state.status) && (!state.type || t.task_type === state.type);
}

function renderRow(t, tr) {
  tr = tr || el('tr');
  tr.dataset.id = t.id;
  tr.dataset.status = t.status;
  const now = Date.now() / 1000;
  const dur = FINAL.has(t.status) && t.updated_time ? ago(t.updated_time - t.created_time) :
              t.status === 'IN_PROGRESS' ? '…' : '';
  keepFocus(tr, null, () => tr.replaceChildren(
      el('td', {class: 'c-status'}, chip(t.status)),
      el('td', {class: 'c-id'}, el('a', {href: '#/tasks/' + t.id, dataset: {id: t.id}}, idNode(t.id))),
      el('td', {class: 'c-type'}, ...clientText(t.task_type)),
      el('td', {class: 'c-msg', title: clientPlain(t.status_msg || '')}, ...clientText(t.status_msg || '')),
      el('td', {class: 'c-age num', dataset: {created: t.created_time}, text: ago(now - t.created_time)}),
      el('td', {class: 'c-dur num', text: dur})));
  tr.classList.toggle('selected', t.id === state.detail);
  delete tr.dataset.removed;
  tr.removeAttribute('title');
  if (state.removed.has(t.id)) markRemoved(tr, state.removed.get(t.id));
  return tr;
}

// The only deletion taskd makes: the sweep's, of a finished task past its ttl (and retention_grace).
function removalText(seconds) {
  return 'removed (ttl expired)' + (isFinite(seconds) ? ' at ' + when(seconds) : '');
}

// A removed task's row stays where it is until the list is read again (as other changes
// update rows in place, and the page's next_token still follows the rows shown), marked.
function markRemoved(tr, seconds) {
  tr.dataset.removed = '';
  tr.title = 'This task was ' + removalText(seconds) + '.';
  const gone = chip('REMOVED');
  gone.title = 'was ' + tr.dataset.status.replace('_', ' ').toLowerCase();
  tr.querySelector('.c-status').replaceChildren(gone);
}

// A task the page knows to be removed: its REMOVE event came, or a task it had shown answers 404.
function noteRemoved(id, seconds) {
  state.removed.delete(id);
  state.removed.set(id, seconds);
  if (state.removed.size > REMOVED_KEEP) state.removed.delete(state.removed.keys().next().value);
  const row = state.rows.get(id);
  if (row) markRemoved(row.tr, seconds);
}

function listQuery() {
  const q = new URLSearchParams({limit: String(PAGE_SIZE)});
  const token = state.tokens[state.tokens.length - 1];
  if (token) q.set('next_token', token);
  else {
    if (state.status) q.set('status', state.status);
    if (state.type) q.set('task_type', state.type);
  }
  return '/tasks?' + q;
}

// The list and the event stream are read apart: the events that come while a list is read are
// held, then those the list does not reflect (after its X-Last-Event-ID) are applied to it in
// their order; the others would take its rows back to an older state. Whether it showed its
// list (not when it failed, or when a newer load was started before it was read).
const listReads = newestRead();
async function loadTasks() {
  const current = listReads();
  state.during = []; // a newer load's list reflects what an older one held
  let res;
  try {
    res = await api(listQuery(), {as: 'list', current}); // an outdated read says nothing
  } catch (e) {
    if (!current()) return false;
    // a page's next_token is of the database that gave it: after taskd restarted on another, the
    // page is no more, and the first page is read instead
    if (e.status === 400 && state.tokens.length > 1) return firstPage();
    if (e.status === 422) {
      // the filter names a type taskd no longer has (it restarted with others): the types read
      // again let it go, which the page says (not that the list failed)
      await loadTypes();
      if (!current() || dropGoneFilter()) return false;
    }
    replayDuring(null); // onto the rows as they are
    // said once, by the banner (bannerSays()) or a toast: a failure the banner said, then one it
    // does not (a 403, then a 503), is toasted; read again at the stream's next (re)connection,
    // and after a while unless the answer would be the same (a 4xx but a timeout or too many
    // requests; a 401 waits for a token; a 403, which the banner says, is read again by the poll:
    // listRefused())
    const where = bannerSays(e.status) ? 'banner' : 'toast';
    if (where === 'toast' && state.loadFailed !== 'toast') toast('Cannot list tasks: ' + e.message, true);
    state.loadFailed = where;
    if (!(e.status >= 400 && e.status < 500) || e.status === 408 || e.status === 429) retryList();
    return false;
  }
  if (!current()) return false; // a newer load is under way
  state.loadFailed = false;
  clearTimeout(listRetry.timer);
  listRetry.timer = null;
  listRetry.ms = 0;
  const body = $('#tasks tbody');
  state.rows.clear();
  const trs = res.data.tasks.map((t) => {
    typeSeen(t.task_type);
    const tr = renderRow(t);
    state.rows.set(t.id, {task: t, tr});
    return tr;
  });
  keepFocus(body, $('#tasks-title'), () => body.replaceChildren(...trs));
  state.next = res.data.next_token;
  state.newCount = 0;
  updatePager();
  state.listSeq = eventId(res.headers.get('X-Last-Event-ID'));
  replayDuring(state.listSeq);
  return true;
}

// A list that could not be read is read again 1 s later, then after twice as long each time, up
// to 30 s, until one is (while the stream asks for a token, whose looks read nothing else, the
// wait's end reads it; a token another route asked for leaves the retries on).
const listRetry = {timer: null, ms: 0}; // timer: a retry is due
function retryList() {
  clearTimeout(listRetry.timer);
  listRetry.ms = Math.min(2 * listRetry.ms || 1000, 30000);
  listRetry.timer = setTimeout(() => {
    listRetry.timer = null;
    if (!streamAsks) loadTasks();
  }, listRetry.ms);
}

// The list stands refused with what the banner says (a 403: a proxy in front refusing it, say), and
// nothing reads it again: no read of it under way (state.during), no retry due (those are for taskd
// not reached). The poll reads it again then, as it reads the queues: a proxy that stops refusing is
// seen, where the banner stayed until a filter, a page or the stream's next opening read the list.
function listRefused() {
  return health.failing.has('list') && state.during === null && !listRetry.timer;
}

// Apply the events held while a list was read: those after the position it reflects (after:
// null when not known, then all of them), once each.
function replayDuring(after) {
  const held = state.during || [];
  state.during = null;
  // the list is what the page has now: an event at or before its position is in it (the
  // position only goes back when taskd's change log was replaced)
  if (after !== null) state.taken = after;
  for (const {seq, ev} of held) applyOnce(seq, ev);
}

// One task event from the stream (seq: its id, a BigInt, or null), applied now or held while a
// list is read.
function takeEvent(seq, ev) {
  if (state.during) state.during.push({seq, ev});
  else applyOnce(seq, ev);
}

// Ids only grow along the change log, and a tab applies each event once: one it has (its id at
// most the last taken, or its list's position) comes again when a stream starts from an older
// id than this tab has seen, as a new reader of a shared stream (see share) may, or a shared
// stream from the group's position, older than this tab's list. The stream reads every type
// (a shared one serves tabs of other filters): a tab leaves out the events of other types than
// its filter's, but for the task its drawer shows, which may be of any type: the drawer alone
// follows it then (what applyEvent() does for the list, such as reading it again for a task
// that enters the filtered status, is for tasks of the list's type).
function applyOnce(seq, ev) {
  if (seq !== null) {
    if (state.taken !== null && seq <= state.taken) return;
    state.taken = seq;
  }
  if (state.type && ev.task_type !== state.type) {
    if (ev.id !== state.detail) return;
    if (ev.event === 'REMOVE') noteRemoved(ev.id, eventSeconds(ev));
    followDetail(ev);
    return;
  }
  applyEvent(ev);
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadTasks, 500);
}

function updatePager() {
  const page = state.tokens.length;
  $('#tasks-empty').hidden = state.rows.size > 0;
  $('#page-newer').disabled = page <= 1;
  $('#page-older').disabled = !state.next;
  const n = state.rows.size;
  $('#page-info').textContent = n ? 'Page ' + page + ' · ' + plural(n, 'task') : '';
  $('#new-tasks').hidden = state.newCount === 0;
  $('#new-tasks-btn').textContent = state.newCount + ' new — show';
}

function firstPage() {
  state.tokens = [''];
  return loadTasks();
}

// An event's time in Unix seconds, NaN when it has none.
function eventSeconds(ev) {
  const seconds = Date.parse(ev.time) / 1000;
  return isFinite(seconds) ? Math.floor(seconds) : NaN;
}

// A change of the task open in the drawer (a removal noted by then): it is read again, or shown
// removed.
function followDetail(ev) {
  if (ev.event !== 'REMOVE') {
    refreshDetailSoon();
    return;
  }
  clearTimeout(detailTimer);
  detailReads(); // a load under way, which may have read the task before it went, is outdated
  showRemoved(ev.id);
}

// One change from the event stream: update the row, or add it on the first page.
function applyEvent(ev) {
  const row = state.rows.get(ev.id);
  const seconds = eventSeconds(ev);
  if (ev.event === 'REMOVE') {
    noteRemoved(ev.id, seconds);
    if (row) flash(row.tr);
    if (ev.id === state.detail) followDetail(ev);
    return;
  }
  if (row) {
    const t = Object.assign({}, row.task, {status: ev.status, status_msg: ev.status_msg});
    if (isFinite(seconds)) t.updated_time = seconds;
    row.task = t;
    renderRow(t, row.tr);
    flash(row.tr);
  } else if (state.status && ev.status === state.status && ev.event === 'MODIFY') {
    // a task entered the filtered status: its place in the list is the server's to say
    if (state.tokens.length === 1) reloadSoon();
  } else if (ev.event === 'INSERT') {
    const t = {id: ev.id, task_type: ev.task_type, status: ev.status, status_msg: ev.status_msg || '',
               created_time: isFinite(seconds) ? seconds : Math.floor(Date.now() / 1000)};
    t.updated_time = t.created_time;
    if (!taskMatches(t)) return;
    if (state.tokens.length > 1) {
      state.newCount++;
      updatePager();
      return;
    }
    const tr = renderRow(t);
    state.rows.set(t.id, {task: t, tr});
    $('#tasks tbody').prepend(tr);
    flash(tr);
    const body = $('#tasks tbody');
    let trimmed = false;
    while (body.children.length > PAGE_SIZE) {
      const lastRow = body.lastElementChild;
      const hadFocus = lastRow.contains(document.activeElement);
      state.rows.delete(lastRow.dataset.id);
      lastRow.remove();
      trimmed = true;
      // a row pushed off the page would take the focus with it: the link of the row now in its
      // place, the page's last, takes it (the reload below keeps it there), else the heading
      if (hadFocus) focusOn(body.lastElementChild && body.lastElementChild.querySelector('a[data-id]'), $('#tasks-title'));
    }
    // the next page's token was for the rows of the load: ask for one that follows these
    if (trimmed) reloadSoon();
    updatePager();
  }
  if (ev.id === state.detail) refreshDetailSoon();
}

// Rows whose highlight restarts: one frame takes the class off the rows queued, the next puts
// it back, so a burst of events costs a style pass a frame (a forced layout for each event
// froze the page for seconds under a burst). A background tab runs no frames: the queue then
// holds its rows until the tab is shown, and lets go of those no longer on the page (pushed
// off by newer ones, or drawn anew by a load) once it holds two pages of rows, so that a tab
// left out of sight for hours beside one in sight, hearing every new task, keeps no more.
const flashQueue = new Set();
let flashScheduled = false;

function flash(tr) {
  flashQueue.add(tr);
  if (flashQueue.size > 2 * PAGE_SIZE) {
    for (const r of flashQueue) if (!r.isConnected) flashQueue.delete(r);
  }
  if (!flashScheduled) {
    flashScheduled = true;
    requestAnimationFrame(flashStep);
  }
}

function flashStep() {
  const rows = [...flashQueue];
  flashQueue.clear();
  for (const r of rows) r.classList.remove('flash');
  requestAnimationFrame(() => {
    for (const r of rows) r.classList.add('flash');
    flashScheduled = flashQueue.size > 0;
    if (flashScheduled) requestAnimationFrame(flashStep);
  });
}

// Ages move on by themselves; this only rewrites text already on the page.
function tickAges() {
  const now = Date.now() / 1000;
  for (const td of document.querySelectorAll('#tasks td.c-age')) {
    td.textContent = ago(now - Number(td.dataset.created));
  }
}

/* ---- the event stream ------------------------------------------------- */

let source = null;
let retryTimer = null;
let streamGap = false; // a stream was closed for good: its successor starts with no Last-Event-ID

// A browser opens at most six HTTP/1.1 connections to one host, and each stream holds one: a
// tab hidden for STREAM_PARK_MS closes its stream, so that other tabs of the same taskd can
// have theirs. Shown again, it reads its page of tasks again and continues from there, as after
// a gap. Tabs that share a stream (see share) park it together: when none of them has been in
// sight for STREAM_PARK_MS.
const STREAM_PARK_MS = PERIODS.park;
let parkTimer = null;
let parked = false;

function parkStream() {
  if (source) source.close();
  source = null;
  clearTimeout(retryTimer);
  parked = true;
  setConn('paused', 'paused while hidden');
}

function onVisibility() {
  clearTimeout(parkTimer);
  const hidden = document.visibilityState === 'hidden';
  if (!hidden && queuesStale) queuesSoon();
  if (!hidden) lookWhileWaiting(0); // one left out while no tab of its group was in sight
  if (share.name) {
    holdShown(!hidden);
    if (!share.leader) share.post({kind: hidden ? 'hidden' : 'shown'});
    else if (hidden) parkTimer = setTimeout(parkIfUnseen, STREAM_PARK_MS);
    else if (parked) unpark();
    return;
  }
  if (hidden) {
    parkTimer = setTimeout(parkStream, STREAM_PARK_MS);
  } else if (parked) {
    unpark();
  }
}

function unpark() {
  parked = false;
  // a page whose stream asks for a token says so again, not paused: a token entered, or taskd
  // asking for none, connects. One that waits for a token another route asked for reads on: its
  // stream worked.
  if (streamAsks) return setConn('offline', 'offline');
  const passed = share.position();
  loadTasks().then((shown) => {
    // nothing was passed on while the stream was let go: a list from before where it had come to
    // is of a new change log (taskd restarted on a new database meanwhile), whose ids no stream
    // shows going down. The group's position starts again from the list's, and a reading tab has
    // the others read their page, as at a reset. Only a list this load showed says so: one that a
    // newer load overtook (a filter chosen at once) leaves the list of before on show.
    if (shown && passed !== null && state.listSeq !== null && state.listSeq < passed) {
      share.restart(state.listSeq);
      if (share.leader) share.post({kind: 'event', type: 'reset', data: '', id: idText(state.listSeq)});
    }
    connect(state.listSeq);
  });
  refreshDetailSoon();
  queuesSoon();
}

// What the page says of its stream; a leader says it to the tabs it reads for, whose words
// are client text to them. #conn is a live region: it is rewritten only when that changes.
// Its word on show, read out alone ("live"), says little: a screen reader reads the sentence
// of its state instead, in the page's own words.
const conn = {state: 'connecting', text: 'connecting'};
const CONN_SAID = new Map([
  ['connecting', 'Live updates: connecting to taskd.'],
  ['live', "Live updates: on. The task list follows taskd's changes."],
  ['offline', "Live updates: off. The task list does not follow taskd's changes; retrying."],
  ['paused', 'Live updates: paused while out of sight; on again once shown.'],
]);
const CONN_SAID_TOKEN = "Live updates: off. The task list does not follow taskd's changes until a token is entered, " +
                        'or taskd stops asking for one.';
function setConn(s, text) {
  if (s !== conn.state || text !== conn.text) {
    conn.state = s;
    conn.text = text;
    $('#conn').dataset.state = clientPlain(s);
    $('#conn-text').replaceChildren(...clientText(text));
    sayConn();
  }
  if (share.leader) share.post({kind: 'conn', state: s, text});
}

// The sentence of the state, written only when it differs: each writing is read out. A refused
// stream tried again (connecting, then offline again, every few seconds while it is refused)
// leaves the offline sentence, which says it retries; a page that waits for a token does not.
function sayConn() {
  const said = $('#conn-said');
  if (conn.state === 'connecting' && said.textContent === CONN_SAID.get('offline')) return;
  const sentence = conn.state === 'offline' && waitingForToken() ? CONN_SAID_TOKEN :
                   CONN_SAID.get(conn.state) || 'Live updates: ' + clientPlain(conn.text);
  if (said.textContent !== sentence) said.textContent = sentence;
}

/* ---- one stream for the tabs of a taskd ------------------------------- */

// Each tab's own stream held one of the browser's six connections to a host, so a seventh tab
// in sight could not load. The tabs of one origin that use the same token share one stream
// instead: the tab that holds a Web Lock (the leader; it holds it while it lives) reads /events
// and passes each event on over a BroadcastChannel; when it closes, the next tab waiting for
// the lock takes over and reads on from the last event id the group was passed, so nothing is
// lost in between (and what it reads again, each tab leaves out: see applyOnce). The lock's and the channel's name come from the token's SHA-256: a tab
// hears only the tabs of its own token. Without Web Locks, BroadcastChannel or (with a token)
// SubtleCrypto, as outside a secure context, each tab reads its own stream as before.
// The shared stream reads every task type; each tab leaves out what its filter does not show.
const share = {
  name: null,     // the group's lock and channel name; null: this tab reads its own stream
  channel: null,
  leader: false,  // this tab holds the lock and reads the stream
  end: null,      // gives the lock back (or withdraws its request)
  seen: null,     // the id of the latest event this tab read or was passed (a BigInt)
  at: null,       // the position the leader last said the stream was at (a BigInt)
  listed: false,  // this tab's first list (since it joined) is read
  shown: null,    // gives back the shared lock held while this tab is in sight
  post(message) {
    if (this.channel) this.channel.postMessage(message);
  },
  // where the group's stream has been read to: a new leader reads on from there
  position() {
    return latestId(this.seen, this.at);
  },
  see(id) {
    this.seen = latestId(this.seen, eventId(id));
  },
  // a reset: the stream goes on from id, lower than those seen when its change log is a new one
  restart(id) {
    this.seen = eventId(id);
    this.at = null;
  },
};
let eventsGen = 0; // beginEvents() calls: a later one (a new token) supersedes an earlier
let cachedAway = false; // the page left its group for the back/forward cache

async function groupName(token) {
  if (!window.isSecureContext || !navigator.locks || typeof BroadcastChannel !== 'function') return null;
  if (!token) return 'taskd-events';
  if (!window.crypto || !crypto.subtle) return null;
  try {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
    return 'taskd-events-' + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  } catch (e) {
    return null;
  }
}

// Joins the tabs of this tab's token (or none: this tab reads its own stream), then reads the
// first list and follows the events from its position. The channel is heard before the list is
// read, so that an event passed on meanwhile is held like one of its own stream.
async function beginEvents() {
  const gen = ++eventsGen;
  const name = await groupName(auth.token);
  if (gen !== eventsGen) return;
  if (name) joinGroup(name);
  onVisibility(); // a tab opened out of sight
  await firstPage();
  if (gen !== eventsGen) return;
  if (!share.name) return connect(state.listSeq);
  share.listed = true;
  if (share.leader) lead();
}

function joinGroup(name) {
  share.name = name;
  share.channel = new BroadcastChannel(name);
  share.channel.onmessage = (m) => fromGroup(m.data);
  // what this tab said of its stream goes (a tab that joined a live one kept it for good): the
  // group's reading tab says again what its own is refused with as it tries it, a retry period on
  health.ok('events');
  const quit = new AbortController();
  let release = null;
  share.end = () => (release ? release() : quit.abort());
  navigator.locks.request(name, {signal: quit.signal}, () => {
    if (share.name !== name) return; // left meanwhile
    share.leader = true;
    $('#conn').dataset.role = 'leader';
    $('#conn').title = 'The live event stream (GET /events), read by this tab for the other tabs of this taskd';
    if (share.listed) lead();
    return new Promise((resolve) => (release = resolve)); // held while the tab lives
  }).catch(() => {}); // withdrawn: the tab left the group
  $('#conn').dataset.role = 'follower';
  $('#conn').title = 'The live event stream (GET /events), read by another tab of this taskd';
  setConn('connecting', 'connecting');
  share.post({kind: 'hello'}); // the leader answers with the group's position and state
}

// Out of the group (its token changed): the next tab takes over.
function leaveGroup() {
  if (source) source.close();
  source = null;
  clearTimeout(retryTimer);
  if (!share.name) return;
  clearTimeout(parkTimer);
  parked = false;
  holdShown(false);
  share.end();
  share.channel.close();
  Object.assign(share, {name: null, channel: null, leader: false, end: null, seen: null, at: null, listed: false});
  delete $('#conn').dataset.role;
  $('#conn').title = 'The live event stream (GET /events)';
}

// The leader, once its first list is read: it reads on from the group's position, or, new to
// a group that has none, from its list's. Out of sight, with no tab of the group in sight, it
// starts parked.
async function lead() {
  if (source || parked) return;
  if (streamAsks) { // it looks on, as the last one did, and says so: not the last one's "paused"
    setConn('offline', 'offline');
    return lookWhileWaiting();
  }
  const unseen = document.visibilityState === 'hidden' && !(await anyShown());
  if (!share.leader || source || parked) return;
  if (unseen) {
    parkStream();
    return;
  }
  const at = share.position();
  connect(at !== null ? at : state.listSeq);
}

// While in sight a tab holds a shared lock of its group's: the leader asks for them before it
// parks the stream.
function holdShown(on) {
  if (!on || !share.name) {
    if (share.shown) share.shown();
    share.shown = null;
    return;
  }
  if (share.shown) return;
  let release = null;
  const quit = new AbortController();
  share.shown = () => (release ? release() : quit.abort());
  navigator.locks.request(share.name + '-shown', {mode: 'shared', signal: quit.signal},
                          () => new Promise((resolve) => (release = resolve))).catch(() => {});
}

// The lock manager's answer is as of the question: a tab shown while it came (it says so on the
// channel), or this one, is in sight too. A tab that reads its own stream asks itself.
let shownHeard = 0; // the times the leader was told a tab was shown
async function anyShown() {
  if (!share.name) return document.visibilityState !== 'hidden';
  const name = share.name + '-shown';
  const heard = shownHeard;
  try {
    const {held, pending} = await navigator.locks.query();
    return shownHeard !== heard || document.visibilityState !== 'hidden' ||
           held.concat(pending).some((l) => l.name === name);
  } catch (e) {
    return true; // not known: kept open
  }
}

async function parkIfUnseen() {
  if (!share.leader || parked || document.visibilityState !== 'hidden') return;
  if (!(await anyShown()) && share.leader && document.visibilityState === 'hidden') parkStream();
}

// What the leader hears from the others, and they from it.
function fromGroup(m) {
  if (!m || typeof m !== 'object') return;
  if (share.leader) {
    if (m.kind === 'hello') {
      share.post({kind: 'at', seq: idMessage(share.position()), state: conn.state, text: conn.text, asks: streamAsks,
                  detail: askedWhy});
    } else if (m.kind === 'shown') {
      shownHeard++;
      clearTimeout(parkTimer);
      if (parked) unpark();
      lookWhileWaiting(0);
    } else if (m.kind === 'hidden' && document.visibilityState === 'hidden') {
      clearTimeout(parkTimer);
      parkTimer = setTimeout(parkIfUnseen, STREAM_PARK_MS);
    }
    return;
  }
  const says = typeof m.state === 'string' && typeof m.text === 'string';
  if (m.kind === 'event') {
    share.see(m.id);
    streamEvent(m.type, m.data, m.id);
  } else if (m.kind === 'open') {
    // a tab that has not been passed everything up to where the stream starts (its list is
    // older, as after the stream was parked) reads its list again
    const from = eventId(m.from);
    const mine = latestId(state.listSeq, share.seen);
    const behind = from !== null && mine !== null && mine < from;
    if (from !== null) share.at = from;
    streamOpened(m.reread || behind);
  } else if (m.kind === 'conn') {
    if (says) setConn(m.state, m.text);
  } else if (m.kind === 'refused') {
    eventsRefused(m.status, m.detail);
  } else if (m.kind === 'unasked') {
    if (waitingForToken()) unasked();
  } else if (m.kind === 'at') {
    if (eventId(m.seq) !== null) share.at = eventId(m.seq);
    if (says) setConn(m.state, m.text);
    // whether the stream asks for a token, for a tab that joins: one that joined after it was
    // refused learns it, and why, in the words the leader was refused with (taking the stream
    // over, it looks on), and one that was away meanwhile (in the back/forward cache) that taskd
    // asks for none now
    if (m.asks) {
      // (a reader of the page before this one, open across an upgrade, sends no detail: taskd's own)
      eventsRefused(401, typeof m.detail === 'string' ? m.detail : 'Not authenticated: send Authorization: Bearer <token>');
    } else if (m.asks === false && streamAsks) {
      waitOver();
      loadTypes();
    }
  }
}

// A stream opened (reread: after a gap, or a failed first load, the page is read again).
function streamOpened(reread) {
  if (reread || state.loadFailed) loadTasks();
  if (reread) refreshDetailSoon(); // it may have changed, or gone, meanwhile
  if (reread || !state.types.length) loadTypes(); // taskd may have restarted with other types
  setConn('live', 'live');
  health.ok('events');
}

// One event of the stream, its own or passed on by the leader.
function streamEvent(type, data, id) {
  if (type === 'reset') {
    share.restart(id);
    loadTasks();
    refreshDetailSoon();
    queuesSoon();
    return;
  }
  if (type !== 'task') return;
  let ev;
  try {
    ev = JSON.parse(data);
  } catch (e) {
    return;
  }
  typeSeen(ev.task_type);
  takeEvent(eventId(id), ev);
  queuesSoon();
}

function connect(after) {
  if (parked) return; // shown again, the tab connects
  if (source) source.close();
  clearTimeout(retryTimer);
  // the filters are applied here (applyOnce, applyEvent), not by the stream: a task leaving
  // the filtered status is still seen to change, and the task open in the drawer, of whatever
  // type, too; after: the change log's position to continue from (the first list's, or the
  // group's), once (a reconnection continues from its last event)
  const asked = after !== undefined && after !== null;
  const q = new URLSearchParams();
  if (asked) q.set('last_event_id', idText(after));
  const query = q.toString();
  const url = '/events' + (query ? '?' + query : '');
  setConn('connecting', 'connecting');
  let opened = false;
  // the id this stream was asked to start after, else where the tabs had come to (along one change
  // log, a stream asked from no position starts past it), then its last event's
  let at = asked ? eventId(after) : share.position();
  const pass = (type, data, id) => {
    share.see(id);
    share.post({kind: 'event', type, data, id});
    streamEvent(type, data, id);
  };
  const s = fetchStream(url, {
    open() {
      const reread = opened || streamGap;
      const from = opened || !asked ? null : after;
      streamGap = false;
      opened = true;
      if (from !== null) share.at = from;
      streamOpened(reread);
      share.post({kind: 'open', reread, from: idMessage(from)});
    },
    event(type, data, id) {
      // ids only grow along one change log, and a stream asked from no position starts past
      // where the tabs had come to: a lower id is a new log's (taskd restarted on a new database,
      // and answered an id it never gave with what comes next). What the tabs show is read again,
      // as after a reset, and the group's position starts again from there. (taskd's own reset
      // for such an id has its newest, lower: it is that reset.)
      const seq = eventId(id);
      if (seq !== null && at !== null && seq < at && type !== 'reset') pass('reset', '', id);
      if (seq !== null) at = seq;
      pass(type, data, id);
    },
    reconnecting() {
      if (s === source) setConn('connecting', 'reconnecting');
    },
    closed() {
      if (s !== source) return;
      // closed for good (an HTTP error answer): try again ourselves, a little later. Offline is
      // said once the reason is known: after a 401 the page waits for a token, it does not retry.
      // The reason is said only of this stream, and while the look's token is held (auth.holds(),
      // as api() judges a 401): a token entered meanwhile (another read asked for it) reads all
      // again, and the look's refusal, made with none, would say that token refused
      streamGap = true;
      lookAtStream(url).then((look) => s === source && auth.holds(look.sent) && sayRefused(look)).finally(() => {
        if (s !== source) return;
        setConn('offline', 'offline');
        // while the stream asks for a token, a token entered, or a look that finds taskd asks
        // for none, connects (a token another route asked for leaves the stream's retries on)
        retryTimer = setTimeout(() => streamAsks || connect(), PERIODS.retry);
      });
    },
  });
  source = s;
}

// The stream, read with fetch(), which can send the token and shows every byte that comes (an
// EventSource sends no header, and shows neither a comment nor a block with an id alone, as
// taskd's pings are): the text/event-stream fields are parsed here, and a dropped stream is taken
// up again from the last event id after the server's retry time. So is one that has been silent
// for PERIODS.silence, its pings too: taskd stopped, a host gone from the network, or a proxy or
// NAT that let the connection go without a word held it open, and the page said live for good.
function fetchStream(url, on) {
  let ctl = null; // the connection's: each try has its own
  let silence = null;
  let lastId = null;
  let retryMs = 2000;
  let stopped = false;
  const heard = () => {
    clearTimeout(silence);
    silence = setTimeout(() => ctl.abort(), PERIODS.silence);
  };
  const pause = () => new Promise((resolve) => setTimeout(resolve, retryMs));
  (async () => {
    while (!stopped) {
      ctl = new AbortController();
      heard(); // the answer's head too: a try left unanswered is given up
      let r;
      try {
        const headers = auth.headers({Accept: 'text/event-stream'});
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        r = await fetch(url, {headers, cache: 'no-store', signal: ctl.signal});
      } catch (e) {
        if (stopped) return;
        on.reconnecting();
        await pause();
        continue;
      }
      if (!r.ok || !r.body || !/^text\/event-stream/i.test(r.headers.get('Content-Type') || '')) {
        // refused, or answered with no event stream (a proxy's page of its own): read for why
        clearTimeout(silence);
        if (!stopped) on.closed();
        return;
      }
      on.open();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let type = '';
      let data = [];
      try {
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          heard();
          buf += value;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') { // the end of an event
              if (data.length) on.event(type || 'message', data.join('\n'), lastId);
              type = '';
              data = [];
              continue;
            }
            if (line.startsWith(':')) continue; // a comment: the keep-alive
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const v = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
            if (field === 'data') data.push(v);
            else if (field === 'event') type = v;
            else if (field === 'id') lastId = v;
            else if (field === 'retry' && /^\d+$/.test(v)) retryMs = Number(v);
          }
        }
      } catch (e) {
        // dropped, silent (or stopped)
      }
      if (stopped) return;
      on.reconnecting();
      await pause();
    }
  })();
  return {
    close() {
      stopped = true;
      clearTimeout(silence);
      ctl.abort();
    },
  };
}

// Say why the stream was refused (401/403, no /events at all, or another refusal, such as a
// 503 when taskd has as many streams open as it takes), as a look at it found; a leader says it
// to the tabs it reads for too.
function sayRefused({status, detail}) {
  eventsRefused(status, detail);
  if (share.leader) share.post({kind: 'refused', status, detail});
}

// How taskd answers a look at the stream: its status (0: taskd not reached) and detail; cut: the
// read of an error answer's body was given up, and the status's text says it instead; sent: what
// the look went with (auth.sent()), of which its 401 says something while auth.holds() it.
async function lookAtStream(url) {
  const sent = auth.sent();
  let status = 0; // 0: taskd not reached
  let detail = '';
  let cut = false;
  try {
    // a look left unanswered (taskd stopped, a proxy holding it) is taskd not reached: the page
    // goes offline and tries again (or looks again), where it would say it connects for good
    await bounded(PERIODS.retry, async (signal) => {
      // the headers say it, and an error answer's body its detail; the body of a stream (when it
      // works) is not read
      const r = await fetch(url, {cache: 'no-store', signal, headers: auth.headers({}, sent.token)});
      detail = r.statusText;
      if (!r.ok) {
        try {
          const data = JSON.parse(await r.text());
          if (data && typeof data.detail === 'string') detail = data.detail;
        } catch (e) {
          cut = signal.aborted; // else no JSON detail: the status text says it
        }
      }
      status = r.status;
    });
  } catch (e) {
    status = 0;
  }
  return {status, detail, cut, sent};
}

function eventsRefused(status, detail) {
  detail = String(detail);
  if (status === 401) {
    // said as the token asked for; what the list and the queues said goes too (taskd not reached, as
    // it restarted with tokens): the page waits, and reads them again once the wait is over
    health.fail('auth', refusal(status, detail));
    for (const what of ['events', 'list', 'queues']) health.ok(what);
    streamAsks = true;
    askedWhy = detail;
    lookWhileWaiting();
    return;
  }
  if (status === 0) health.fail('events', UNREACHED);
  else if (status === 404) health.fail('events', 'This taskd has no event stream (GET /events): the task list does not update by itself.');
  else if (status >= 400) {
    health.fail('events', 'taskd refused the event stream (' + status + ': ' + detail + '): the task list does not ' +
                          'update by itself meanwhile. Retrying.');
  } else {
    health.ok('events'); // an answer that is no event stream (a 2xx: a proxy's page) is said offline alone
  }
}

/* ---- queues ----------------------------------------------------------- */

// The queues again soon after a change (a burst of them: once). Only a tab in sight asks: the
// tabs of a shared stream all hear every change, and one out of sight would ask for a table
// no one sees; it asks when shown again (and the 5 s poll goes on meanwhile). Nor while their
// last read was refused with a 401, which a read would be again: a token entered reads them
// (waitOver()).
let queuesTimer = null;
let queuesStale = false;
function queuesSoon() {
  if (document.visibilityState === 'hidden') {
    queuesStale = true;
    return;
  }
  if (queuesTimer || queuesAsk) return;
  queuesTimer = setTimeout(() => {
    queuesTimer = null;
    loadQueues();
  }, 700);
}

// The newest read alone counts (newestRead()): the poll's and one after a change, or after a token
// was entered, may be under way at once, and the older answered last would leave the table as it
// was before the newer one until the next poll, or for good while the polls wait.
let queuesReadAt = null; // when the table was last read
let queuesAsk = false; // the last read was refused with a 401: the poll and queuesSoon() wait for a token
const queuesReads = newestRead();
async function loadQueues() {
  const current = queuesReads();
  queuesStale = false;
  let res;
  try {
    res = await api('/queues', {as: 'queues', current}); // an outdated read says nothing
  } catch (e) {
    if (!current()) return;
    queuesAsk = e.status === 401;
    queuesFailed(e);
    return;
  }
  if (!current()) return;
  queuesAsk = false;
  queuesFailed(null);
  queuesReadAt = new Date();
  const body = $('#queues tbody');
  const dlqs = new Set(res.data.queues.map((q) => q.dead_letter_queue).filter(Boolean));
  keepFocus(body, $('#queues-title'), () => body.replaceChildren(...res.data.queues.map((q) => {
    const dead = q.dead_letter_queue ? q.dead_letter_count : null;
    const name = el('td', {class: 'q-name'}, ...clientText(q.name));
    if (q.dead_letter_queue) {
      name.append(el('small', {}, el('span', {}, 'dead letters → ', ...clientText(q.dead_letter_queue)),
                     el('button', {type: 'button', class: 'btn small redrive', disabled: dead === 0,
                                   title: clientPlain('Move the dead letters of ' + q.dead_letter_queue + ' back to ' + q.name),
                                   dataset: {queue: q.name}, onclick: () => confirmRedrive(q)}, 'Redrive')));
    } else if (dlqs.has(q.name)) {
      name.append(el('small', {text: 'dead-letter queue'}));
    }
    return el('tr', {dataset: {queue: q.name}}, name,
              el('td', {class: 'num', dataset: {col: 'depth'}, text: q.depth}),
              el('td', {class: 'num', dataset: {col: 'in_flight'}, text: q.in_flight}),
              el('td', {class: 'num', dataset: {col: 'delayed'}, text: q.delayed}),
              el('td', {class: 'num dead' + (dead ? ' has' : ''), dataset: {col: 'dead'}, text: dead === null ? '—' : dead}));
  })));
}

// A read of the queues that failed (null: one that worked). Taskd not reached, or a refusal
// (401, 403), shows the banner (bannerSays()); another answer (a 503, with its detail) shows
// above the table, whose counts, dimmed, are the last read's, not the queues' now.
function queuesFailed(e) {
  const box = $('#queues-error');
  const said = e && !bannerSays(e.status);
  box.hidden = !said;
  box.replaceChildren(...clientText(said ? 'Cannot read the queues (' + e.status + ': ' + e.message + ')' +
      (queuesReadAt ? '; the counts below are as of ' + queuesReadAt.toLocaleTimeString() : '') + '. Retrying.' : ''));
  if (said) $('#queues').dataset.stale = '';
  else delete $('#queues').dataset.stale;
}

function confirmRedrive(q) {
  const dialog = $('#confirm');
  const n = q.dead_letter_count;
  $('#confirm-text').replaceChildren(...clientText('Move ' + plural(n, 'dead letter') + ' from ' +
      q.dead_letter_queue + ' back to ' + q.name + '? Their tasks go back to CREATED and run again.'));
  const ok = $('#confirm-ok');
  const cancel = $('#confirm-cancel');
  const done = () => {
    ok.onclick = cancel.onclick = null;
    dialog.close();
  };
  cancel.onclick = done;
  // however it closes, the focus goes back to the queue's button (drawn anew meanwhile, maybe)
  dialog.onclose = () => focusOn($('#queues button[data-queue="' + CSS.escape(q.name) + '"]'), $('#queues-title'));
  ok.onclick = async () => {
    ok.disabled = true;
    try {
      const res = await api('/queues/' + encodeURIComponent(q.name) + '/redrive', {method: 'POST'});
      const moved = res.data.moved;
      toast('Moved ' + plural(moved, 'message') + ' from ' + q.dead_letter_queue + ' back to ' + q.name + '.');
    } catch (e) {
      toast('Redrive of ' + q.name + ' failed: ' + e.message, true);
    } finally {
      ok.disabled = false;
      done();
      loadQueues();
    }
  };
  dialog.showModal();
  cancel.focus();
}

/* ---- throughput chart (from /metrics) --------------------------------- */

const samples = []; // {t, done, failed}: counters summed over task types

function parseTransitions(text) {
  let done = 0, failed = 0;
  const re = /^taskd_task_transitions_total\{([^}]*)\}\s+([0-9.eE+-]+)/gm;
  for (let m; (m = re.exec(text));) {
    const status = /status="([^"]*)"/.exec(m[1]);
    const v = Number(m[2]);
    if (!status || !isFinite(v)) continue;
    if (status[1] === 'COMPLETED') done += v;
    else if (status[1] === 'FAILED') failed += v;
  }
  return {done, failed};
}

// A sample's 401 counts from the newest read alone (newestRead()): one made before a token was
// entered, refused after the read made with it worked, asked for a token again. Its counters count
// from any read, in the order asked for.
let metricsAsk = false; // the last sample was refused with a 401: the poll waits for a token
const metricsReads = newestRead();
async function sampleMetrics() {
  // the sample's time is when it was asked for: the counters are the server's then, and a page
  // busy when the answer comes (at load) would otherwise stretch or shrink the interval
  const now = Date.now();
  const current = metricsReads();
  let text;
  try {
    // a 401 shows the token field, as any route's; its other failures say nothing (the queues'
    // read in the same poll says taskd is not reached)
    ({text} = await api('/metrics', {current}));
  } catch (e) {
    if (current()) metricsAsk = e.status === 401;
    return;
  }
  metricsAsk = false;
  // in the order asked for, though two answers may come the other way round; two asked for closer
  // than SAMPLES_APART_MS (the poll's and another's: the first rate's, a token's) are one, the later
  // answer's: taken as two, they made a rate of no time (not a number, which the chart drew as its
  // every point) or of a few milliseconds, over which the counters of two answers read apart moved
  let at = samples.length;
  while (at > 0 && samples[at - 1].t > now) at--;
  const near = (i) => i >= 0 && i < samples.length && Math.abs(samples[i].t - now) < SAMPLES_APART_MS;
  const one = near(at - 1) ? at - 1 : near(at) ? at : -1;
  samples.splice(one < 0 ? at : one, one < 0 ? 0 : 1, Object.assign({t: now}, parseTransitions(text)));
  while (samples.length > 2 && samples[0].t < now - CHART_WINDOW_MS - METRICS_EVERY_MS) samples.shift();
  drawChart();
}

function drawChart() {
  const chart = $('#chart');
  const W = 180, H = 36;
  chart.replaceChildren(svg('line', {class: 'base', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5}));
  if (samples.length < 2) return;
  const pts = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = (b.t - a.t) / 1000;
    // a restarted taskd starts its counters again: count from zero then
    const dd = b.done >= a.done ? b.done - a.done : b.done;
    const df = b.failed >= a.failed ? b.failed - a.failed : b.failed;
    pts.push({from: a.t, t: b.t, rate: (dd + df) / dt, failRate: df / dt, n: dd + df, f: df});
  }
  const last = pts.slice(-6); // the last half minute
  // the time the samples span: not always 5 s apart (the first at 2 s, more after a token)
  const secs = (last[last.length - 1].t - last[0].from) / 1000;
  const rate = secs > 0 ? last.reduce((s, p) => s + p.n, 0) / secs : 0;
  const tot = pts.reduce((s, p) => s + p.n, 0), fail = pts.reduce((s, p) => s + p.f, 0);
  $('#stat-rate').textContent = rate < 10 ? rate.toFixed(1) : String(Math.round(rate));
  const failPct = tot ? (100 * fail / tot) : 0;
  $('#stat-fail').textContent = tot ? (failPct < 10 ? failPct.toFixed(1) : Math.round(failPct)) + '%' : '0%';
  $('#stat-fail').classList.toggle('bad', fail > 0);
  $('#rates').title = 'Tasks finished per second (last 30 s) and the share that failed (last 5 min); chart: last 5 min, from /metrics';
  const now = Date.now();
  const max = Math.max(1, ...pts.map((p) => p.rate));
  // the last 5 minutes; less (but at least one) while there is not that much to show yet
  const span = Math.min(CHART_WINDOW_MS, Math.max(60000, now - samples[0].t));
  const x = (t) => Math.max(0, W - (now - t) / span * W);
  const y = (v) => H - 1 - v / max * (H - 4);
  const line = pts.map((p) => x(p.t).toFixed(1) + ',' + y(p.rate).toFixed(1)).join(' ');
  const first = pts[0];
  chart.append(svg('polygon', {class: 'area', points: x(first.t).toFixed(1) + ',' + H + ' ' + line + ' ' + x(pts[pts.length - 1].t).toFixed(1) + ',' + H}));
  chart.append(svg('polyline', {class: 'line', points: line}));
  const bw = Math.max(1.5, METRICS_EVERY_MS / span * W - 1);
  for (const p of pts) {
    if (!p.failRate) continue;
    const h = Math.max(2, p.failRate / max * (H - 4));
    chart.append(svg('rect', {class: 'fail', x: (x(p.t) - bw).toFixed(1), y: (H - 1 - h).toFixed(1), width: bw.toFixed(1), height: h.toFixed(1)}));
  }
}

/* ---- create a task ---------------------------------------------------- */

// What the type field's error says is a failed read of the task types' (loadTypes()): it stays
// until a read works, whatever the form's submits and a type chosen clear; a 422 that names the
// field says its own instead.
let typesSaid = false;

function fieldError(field, message) {
  const span = document.querySelector('#create-form .field-error[data-field="' + field + '"]');
  if (span) span.replaceChildren(...clientText(message));
  if (field === 'task_type') typesSaid = false;
  const input = {task_type: '#create-type', data: '#create-data', ttl: '#create-ttl'}[field];
  if (input) markInvalid($(input), !!message);
}

// A field in error is marked for the eye (its border) and for a screen reader (aria-invalid).
function markInvalid(input, bad) {
  input.classList.toggle('invalid', bad);
  if (bad) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

// After a refused submit the keyboard goes to the first field in error, whose label says what.
function focusFirstError() {
  const first = ['#create-type', '#create-data', '#create-ttl'].map($).find((i) => i.classList.contains('invalid'));
  if (first) first.focus();
}

function clearFieldErrors() {
  for (const f of ['task_type', 'data', 'ttl', 'body']) if (f !== 'task_type' || !typesSaid) fieldError(f, '');
}

// Validate the data as it is typed: it must at least be JSON (the server says the rest).
function checkData() {
  const text = $('#create-data').value.trim();
  const hint = $('#create-data-state');
  if (!text) {
    hint.textContent = 'empty: no data';
    hint.classList.remove('bad');
    markInvalid($('#create-data'), false);
    return true;
  }
  try {
    const v = JSON.parse(text);
    const kind = v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? null : 'a ' + typeof v;
    hint.textContent = kind ? 'valid JSON, but ' + kind + ': data must be an object' : 'valid JSON';
    hint.classList.toggle('bad', !!kind);
    markInvalid($('#create-data'), !!kind);
    return true;
  } catch (e) {
    hint.replaceChildren(...clientText('not JSON: ' + e.message)); // it quotes the text typed
    hint.classList.add('bad');
    markInvalid($('#create-data'), true);
    return false;
  }
}

async function submitCreate(e) {
  e.preventDefault();
  clearFieldErrors();
  const result = $('#create-result');
  result.replaceChildren();
  if (!checkData()) {
    fieldError('data', 'Fix the JSON first.');
    $('#create-data').focus();
    return;
  }
  // the body is written from the text as typed: JSON.parse would round integers past 2^53
  const members = ['"task_type":' + JSON.stringify($('#create-type').value)];
  const dataText = $('#create-data').value.trim();
  if (dataText) members.push('"data":' + dataText);
  const ttl = $('#create-ttl').value.trim();
  // a JSON integer as it is; anything else (007, 1.5, soon) as a string, for the server to judge
  if (ttl) members.push('"ttl":' + (/^-?(0|[1-9]\d*)$/.test(ttl) ? ttl : JSON.stringify(ttl)));
  const button = $('#create-submit');
  button.disabled = true;
  try {
    const res = await api('/tasks', {method: 'POST', body: '{' + members.join(',') + '}'});
    const id = res.data.id;
    result.append('Created ', el('a', {href: '#/tasks/' + id, text: id.slice(-12), title: id}));
  } catch (err) {
    if (err.status === 422 && Array.isArray(err.detail)) {
      const said = new Map(); // field -> the messages of its items
      for (const item of err.detail) {
        const loc = Array.isArray(item.loc) ? item.loc : [];
        const field = loc[0] === 'body' && typeof loc[1] === 'string' && ['task_type', 'data', 'ttl'].includes(loc[1]) ? loc[1] :
                      'body';
        said.set(field, (said.get(field) || []).concat(String(item.msg)));
      }
      for (const [field, msgs] of said) fieldError(field, msgs.join(' '));
      focusFirstError();
    } else {
      fieldError('body', err.message);
    }
  } finally {
    button.disabled = false;
  }
}

/* ---- task detail ------------------------------------------------------ */

function openTask(id) {
  location.hash = '#/tasks/' + id;
}

// The drawer closed: the URL loses its task's hash, in the same history entry.
function closeTask() {
  history.replaceState(null, '', location.pathname + location.search);
  route();
}

let drawerOpener = null; // what had the focus when the drawer opened

function route() {
  const m = /^#\/tasks\/([0-9A-Za-z-]{1,64})$/.exec(location.hash);
  const id = m ? m[1].toLowerCase() : null;
  const closed = state.detail;
  state.detail = id;
  for (const {tr} of state.rows.values()) tr.classList.toggle('selected', tr.dataset.id === id);
  const drawer = $('#detail');
  const opening = id && drawer.hidden;
  // the focus leaves a closing drawer only if it is there (not if a link elsewhere closed it)
  const focusBack = !id && !drawer.hidden &&
      (drawer.contains(document.activeElement) || document.activeElement === document.body);
  if (opening) drawerOpener = document.activeElement;
  if (opening) $('#detail-error').hidden = true; // a drawer opened anew says its failure anew
  drawer.hidden = !id;
  if (opening) $('#detail-close').focus(); // keyboard users land in the drawer
  if (focusBack) focusAfterDrawer(closed);
  if (id) loadDetail(id);
  else detailReads(); // a read of the drawer under way is no one's now: its answer is not shown
}

// Back where the drawer was opened from: the task's row link (drawn anew since, maybe), or the
// control outside the list that opened it (search, the form's link) while it is there; else the list.
function focusAfterDrawer(id) {
  const opener = drawerOpener;
  drawerOpener = null;
  const elsewhere = opener && opener !== document.body && opener.isConnected && !$('#tasks tbody').contains(opener);
  const link = id && $('#tasks tbody a[data-id="' + CSS.escape(id) + '"]');
  focusOn(elsewhere ? opener : link, $('#tasks-title'));
}

let detailTimer = null;
function refreshDetailSoon() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => state.detail && loadDetail(state.detail), 400);
}

// The newest read alone counts (newestRead()): a load for a change of the task, for a token entered
// or for another task opened may be under way with an older one, which says nothing once answered,
// a 401 neither: made before a token was entered, it asked for one again though the read made with
// it had worked.
const detailReads = newestRead();
async function loadDetail(id) {
  const current = detailReads();
  const enc = encodeURIComponent(id);
  $('#detail-id').textContent = id;
  if (state.removed.has(id)) {
    showRemoved(id);
    return;
  }
  const err = $('#detail-error');
  if (state.shown !== id) { // nothing of the task shown before stays under this id while it loads
    $('#detail-title').replaceChildren(el('span', {text: 'Task'}));
    $('#detail-removed').textContent = '';
    delete $('#detail').dataset.removed;
    if (err.dataset.task !== id) err.hidden = true; // this task's failed load stays while it is read again
    clearDetail();
  }
  const [task, history, trace] = await Promise.allSettled([
    api('/tasks/' + enc, {current}),
    api('/tasks/' + enc + '/history', {current}),
    api('/tasks/' + enc + '/trace', {current}),
  ]);
  if (!current()) return;
  if (task.status === 'rejected' && task.reason.status === 404) {
    // gone while the page was not following (or never there): a task it had seen was removed
    if (state.shown === id || state.rows.has(id)) noteRemoved(id, NaN);
    showRemoved(id);
    return;
  }
  $('#detail-removed').textContent = '';
  delete $('#detail').dataset.removed;
  if (task.status === 'rejected') {
    // an alert shown or written anew is read out again: a read that keeps failing the same way (on
    // each change of the task) leaves it as it is
    const said = 'Cannot load the task: ' + task.reason.message;
    if (err.hidden || err.dataset.task !== id || err.dataset.said !== said) {
      err.replaceChildren(...clientText(said));
      err.dataset.task = id;
      err.dataset.said = said;
    }
    err.hidden = false;
    clearDetail();
    return;
  }
  err.hidden = true;
  state.shown = id;
  const t = task.value.data;
  $('#detail-title').replaceChildren(el('span', {}, ...clientText(t.task_type)), chip(t.status));
  const src = membersOf(task.value.text); // data, result and ttl as sent, large integers and all
  const ttl = src.has('ttl') && src.get('ttl') !== 'null' ? src.get('ttl') : null;
  const facts = [['Message', t.status_msg ? clientText(t.status_msg) : '—'], ['Created', when(t.created_time)],
                 ['Updated', when(t.updated_time) || '—'],
                 ['Took', FINAL.has(t.status) ? ago(t.updated_time - t.created_time) : '—'],
                 ['TTL', ttl === null ? '—' : ttl + ' (' + (when(Number(ttl)) || '—') + ')']];
  $('#detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {text: k}), el('dd', {}, ...[].concat(v))]));
  showJson($('#detail-data'), src.get('data'));
  showJson($('#detail-result'), src.get('result'));
  renderHistory(history);
  renderTrace(trace);
}

function clearDetail() {
  state.shown = null;
  $('#detail-facts').replaceChildren();
  $('#waterfall').replaceChildren();
  $('#history').replaceChildren();
  $('#detail-data').replaceChildren();
  $('#detail-result').replaceChildren();
  jsonShown.clear();
}

// The drawer of a task that is no more: a notice (a live region) says so. What the drawer showed
// of it stays, dimmed, as last seen; there is nothing left to act on.
function showRemoved(id) {
  const seconds = state.removed.get(id);
  const kept = state.shown === id;
  $('#detail-error').hidden = true;
  $('#detail').dataset.removed = '';
  const title = $('#detail-title');
  const type = kept && title.firstElementChild ? title.firstElementChild.cloneNode(true) : el('span', {text: 'Task'});
  title.replaceChildren(type, chip('REMOVED'));
  if (!kept) clearDetail();
  $('#detail-removed').textContent = seconds !== undefined ?
      'This task was ' + removalText(seconds) + ': taskd deleted it and its history.' +
          (kept ? ' Shown below as last seen.' : '') :
      // a 404 with nothing known of the task before: removed, or a mistyped id
      'This task was removed (ttl expired), or never existed: taskd has no task with this id.';
}

function renderHistory(res) {
  const ol = $('#history');
  if (res.status === 'rejected') {
    ol.replaceChildren(el('li', {class: 'note'}, ...clientText(res.reason.status === 404 ? 'No history kept for this task.' :
                                                               'Cannot load the history: ' + res.reason.message)));
    return;
  }
  const items = res.value.data.history || [];
  ol.replaceChildren(...items.map((h) => el('li', {dataset: {status: h.status}}, chip(h.status),
                                           el('span', {class: 'when', text: typeof h.time === 'number' ? when(h.time) : new Date(h.time).toLocaleString()}),
                                           h.status_msg ? el('span', {class: 'msg'}, ...clientText(h.status_msg)) : null)));
  if (res.value.data.truncated) ol.append(el('li', {class: 'note', text: 'Older changes were not kept.'}));
  if (!items.length) ol.append(el('li', {class: 'note', text: 'No changes recorded.'}));
}

// What a span stands for in the waterfall: its colour and legend entry.
function spanClass(s) {
  if (s.status && s.status.code === 'ERROR') return 'error';
  if (s.kind === 'SERVER') return 'api';
  if (s.kind === 'PRODUCER') return 'publish';
  if (s.kind === 'CONSUMER' && /^receive /.test(s.name)) return 'wait';
  if (s.kind === 'INTERNAL' && s.attributes && s.attributes['taskd.handler']) return 'handler';
  if (s.kind === 'CLIENT') return 'store';
  return 'other';
}

// Rows drawn at most: a trace of 12,000 spans took seconds to draw.
const SPAN_ROWS_MAX = 500;

function renderTrace(res) {
  const box = $('#waterfall');
  if (res.status === 'rejected') {
    box.replaceChildren(el('div', {class: 'summary'}, ...clientText(res.reason.status === 404 ? 'No trace kept for this task.' :
                                                                    'Cannot load the trace: ' + res.reason.message)));
    return;
  }
  const spans = res.value.data.spans || [];
  if (!spans.length) {
    box.replaceChildren(el('div', {class: 'summary', text: 'No spans kept for this task.'}));
    return;
  }
  let t0 = Infinity, t1 = -Infinity;
  let waitMs = 0, runMs = 0, waits = 0, runs = 0;
  for (const s of spans) {
    t0 = Math.min(t0, s.start_time_unix_nano);
    t1 = Math.max(t1, s.end_time_unix_nano);
    const cls = spanClass(s);
    const dur = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6;
    if (cls === 'wait') {
      waitMs += dur;
      waits++;
    }
    if (cls === 'handler' || (cls === 'error' && s.attributes && s.attributes['taskd.handler'])) {
      runMs += dur;
      runs++;
    }
  }
  const total = Math.max(t1 - t0, 1);
  const pct = (v) => (v / total * 100) + '%';
  // depth from the parent links, in the order given (parents come first in time order)
  const depth = new Map();
  for (const s of spans) depth.set(s.span_id, s.parent_span_id && depth.has(s.parent_span_id) ? depth.get(s.parent_span_id) + 1 : 0);
  // rows for the SPAN_ROWS_MAX earliest spans by start time, in the order given
  let drawn = spans;
  if (spans.length > SPAN_ROWS_MAX) {
    const earliest = new Set([...spans].sort((a, b) => a.start_time_unix_nano - b.start_time_unix_nano).slice(0, SPAN_ROWS_MAX));
    drawn = spans.filter((s) => earliest.has(s));
  }

  const ticks = el('div', {class: 'ticks'});
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = el('span', {text: ms(total / 1e6 * f)});
    tick.style.left = (f * 100) + '%';
    ticks.append(tick);
  }
  const rows = [el('div', {class: 'axis'}, el('div'), ticks)];
  for (const s of drawn) {
    const cls = spanClass(s);
    const dur = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6;
    // a span's name can hold a client's text (a route, a task type), and its status message too
    const name = el('div', {class: 'span-name', title: clientPlain(s.name + (s.status && s.status.message ? ' — ' + s.status.message : ''))},
                    el('span', {class: 'kind', text: s.kind.toLowerCase()}), ...clientText(s.name));
    name.style.paddingLeft = (8 + 12 * depth.get(s.span_id)) + 'px';
    const bar = el('div', {class: 'bar ' + cls, title: clientPlain(s.name) + ': ' + ms(dur)});
    bar.style.left = pct(s.start_time_unix_nano - t0);
    bar.style.width = pct(s.end_time_unix_nano - s.start_time_unix_nano);
    // the duration: inside a wide bar, else after it, or before it when the bar ends far right
    const label = el('span', {class: 'bar-label', text: ms(dur) + (cls === 'wait' ? ' queue wait' : '')});
    const wide = (s.end_time_unix_nano - s.start_time_unix_nano) / total > 0.35;
    const endsLate = (s.end_time_unix_nano - t0) / total > 0.7;
    label.style.left = pct((wide || endsLate ? s.start_time_unix_nano : s.end_time_unix_nano) - t0);
    if (wide) label.classList.add('inside');
    else if (endsLate) label.classList.add('before');
    rows.push(el('div', {class: 'span-row', dataset: {kind: cls, span: s.span_id}}, name,
                 el('div', {class: 'span-track'}, bar, label)));
  }
  if (drawn.length < spans.length) {
    const more = spans.length - drawn.length;
    rows.push(el('div', {class: 'spans-more', text: plural(more, 'more span') + ' not drawn: ' +
                         'the rows are the first ' + drawn.length + ' by start time.'}));
  }
  const summary = el('div', {class: 'summary'}, 'Total ', el('b', {text: ms(total / 1e6)}));
  if (waits) summary.append(' · queue wait ', el('b', {text: ms(waitMs)}));
  if (runs) summary.append(' · handler ', el('b', {text: ms(runMs)}));
  summary.append(' · ' + spans.length + ' spans, trace ', el('code', {text: spans[0].trace_id}));
  rows.push(summary);
  box.replaceChildren(...rows);
}

/* ---- task types and start-up ------------------------------------------ */

// The configured task types: the OpenAPI document's TaskType enum is built from the
// configuration (GET /queues names queues, not types, and a type may have no queue). Whether
// they were read. A read that fails leaves the types shown, and the form's type field says so (a
// 401 is said as the token asked for, and takes back what the field said) until a read works: with
// none, why it offers none; with some, that they are an earlier read's, the field not marked in
// error (they can still be chosen).
// The newest read alone counts (newestRead(); an older one, answered after a newer one was made,
// gives what the newer one gives, and says nothing, a 401 neither): a read that failed after a
// newer one worked said those types were an earlier read's, and one made before a token was
// entered, refused with a 401 after the read made with it worked, asked for a token again.
const typesReads = newestRead();
let typesNewest = null; // the newest read
function loadTypes() {
  return (typesNewest = readTypes(typesReads()));
}
async function readTypes(current) {
  let types;
  try {
    const res = await api('/openapi.json', {current});
    if (!current()) return typesNewest;
    const schema = res.data.components && res.data.components.schemas && res.data.components.schemas.TaskType;
    types = schema && Array.isArray(schema.enum) ? schema.enum : [];
  } catch (e) {
    if (!current()) return typesNewest;
    if (e.status === 401) {
      if (typesSaid) fieldError('task_type', ''); // the banner and the token field say why now
    } else {
      const why = e.status ? e.status + ': ' + e.message : 'taskd not reached';
      const offered = state.types.length > 0;
      fieldError('task_type', 'Cannot read the task types (' + why + ')' +
                              (offered ? '; those offered are from an earlier read.' : '.'));
      if (offered) markInvalid($('#create-type'), false);
      typesSaid = true;
    }
    return false;
  }
  if (typesSaid) fieldError('task_type', ''); // what a failed read said
  state.types = types;
  const create = $('#create-type');
  const chosen = create.value;
  // an <option> holds text only: a control in a type's name is written as its mark in brackets
  create.replaceChildren(...state.types.map((t) => el('option', {value: t, text: clientPlain(t)})));
  if (state.types.includes(chosen)) create.value = chosen;
  const filter = $('#filter-type');
  filter.replaceChildren(el('option', {value: '', text: 'All types'}), ...state.types.map((t) => el('option', {value: t, text: clientPlain(t)})));
  filter.value = state.type;
  return true;
}

// taskd refuses to list a type it no longer has (422): once the types are read, a type filter
// not among them gives way to every type, and the page says so. Whether it did.
function dropGoneFilter() {
  if (!state.type || state.types.includes(state.type)) return false;
  toast('taskd has no task type ' + state.type + ' now: the list shows every type.');
  $('#filter-type').value = '';
  setFilter(state.status, '');
  return true;
}

// A task of a type the page was not given: taskd has other types than when they were read (it
// restarted while the stream was let go out of sight, whose taking up reads no types, or their
// read as the stream opened again failed). They are read again, once for each such type: the
// tasks of a type taskd no longer has stay, and each of their changes would read them again. A
// type whose read failed (taskd restarting, say) is read for again at its next task. One read at
// a time: the types seen while it is under way (a list may hold several) wait for its answer.
const typesMissed = new Set();
let typesAsked = null; // the types the read under way is for
function typeSeen(type) {
  if (!state.types.length || state.types.includes(type) || typesMissed.has(type)) return;
  typesMissed.add(type);
  if (typesAsked) {
    typesAsked.push(type); // answered by the read under way
    return;
  }
  const asked = (typesAsked = [type]);
  loadTypes().then((read) => {
    typesAsked = null;
    if (!read) for (const t of asked) typesMissed.delete(t);
  });
}

function setFilter(status, type) {
  state.status = status;
  state.type = type;
  for (const b of document.querySelectorAll('#filter-status button')) {
    b.setAttribute('aria-pressed', String(b.dataset.status === status));
  }
  // the stream reads every type, and stays: the events that come while the list is read are
  // held and applied after it, as in beginEvents()
  firstPage();
}

// The newest search alone counts (newestRead()): two under way at once may be answered out of order,
// and the older, taken last, opened its task over the newer one's.
const searchReads = newestRead();
async function searchTask(e) {
  e.preventDefault();
  const current = searchReads(); // one of nothing, or of no id, too: its words stay
  const id = $('#search').value.trim().toLowerCase();
  const err = $('#search-error');
  err.hidden = true;
  if (!id) return;
  if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(id)) {
    err.hidden = false;
    err.textContent = 'Not a task id: ids look like 0190f3c2-7b1e-7c3a-9d2e-5a1b2c3d4e5f.';
    return;
  }
  try {
    const res = await api('/tasks/' + encodeURIComponent(id), {current});
    if (current()) openTask(res.data.id);
  } catch (ex) {
    if (!current()) return;
    if (ex.status === 404 && state.removed.has(id)) return openTask(id); // its drawer says so
    err.hidden = false;
    err.replaceChildren(...clientText(ex.status === 404 ? 'No task with id ' + id + '.' : 'Cannot look up the task: ' + ex.message));
  }
}

function start() {
  $('#filter-status').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) setFilter(b.dataset.status, state.type);
  });
  $('#filter-type').addEventListener('change', (e) => setFilter(state.status, e.target.value));
  $('#search-form').addEventListener('submit', searchTask);
  $('#token-form').addEventListener('submit', useToken);
  $('#tasks tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (tr) openTask(tr.dataset.id);
  });
  $('#page-older').addEventListener('click', () => {
    if (!state.next) return;
    state.tokens.push(state.next);
    loadTasks();
  });
  $('#page-newer').addEventListener('click', () => {
    if (state.tokens.length > 1) state.tokens.pop();
    loadTasks();
  });
  $('#new-tasks-btn').addEventListener('click', firstPage);
  $('#detail-close').addEventListener('click', closeTask);
  $('#home').addEventListener('click', (e) => {
    e.preventDefault();
    closeTask();
  });
  // Esc closes the drawer, but not behind the redrive dialog, nor from a field that takes text (the
  // search, the form, the token), whose own the key is: a search field clears itself, an input method
  // ends its composition, a list of options closes; typing there, the drawer went too, and the focus
  // to the list. A closed select (the form's type, the list's filter) does nothing with it: from
  // there it closes the drawer, as from any control, the focus staying on the select
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !state.detail || $('#confirm').open) return;
    if (e.target instanceof Element && e.target.matches('input, textarea, [contenteditable]')) return;
    $('#detail-close').click();
  });
  window.addEventListener('hashchange', route);
  $('#create-form').addEventListener('submit', submitCreate);
  $('#create-data').addEventListener('input', () => {
    fieldError('data', '');
    checkData();
  });
  $('#create-ttl').addEventListener('input', () => fieldError('ttl', ''));
  $('#create-type').addEventListener('change', () => typesSaid || fieldError('task_type', ''));
  checkData();

  loadTypes();
  document.addEventListener('visibilitychange', onVisibility);
  // a tab closed in sight: the leader looks again whether any tab is
  window.addEventListener('pagehide', (e) => {
    if (!share.leader) share.post({kind: 'hidden'});
    // kept in the back/forward cache, the page is frozen but lives on: it would keep the lock
    // (and its request for it), and no tab would read the stream; it joins again when shown
    if (e.persisted && share.name) {
      leaveGroup();
      cachedAway = true;
    }
  });
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted || !cachedAway) return;
    cachedAway = false;
    beginEvents();
  });
  beginEvents();
  loadQueues();
  sampleMetrics();
  route();
  setInterval(tickAges, 1000);
  // /metrics and the queues read again, but not a route whose last read was refused with a 401,
  // nor either while the stream asks for a token, whose looks read nothing else (a token entered,
  // or taskd asking for none, reads them: waitOver()); a token another route asked for leaves
  // them on. So is the list while it stands refused (listRefused()).
  setTimeout(() => streamAsks || metricsAsk || sampleMetrics(), 2000); // a first rate soon after loading
  setInterval(() => {
    if (streamAsks) return;
    if (!metricsAsk) sampleMetrics();
    if (!queuesAsk) loadQueues(); // delays and visibility timeouts move counts without a task changing
    if (listRefused()) loadTasks();
  }, METRICS_EVERY_MS);
}

start();
