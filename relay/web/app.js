// roomrelay's page: claims a name (POST /api/join), shows the room's
// events from GET /api/events (server-sent events, resumed by the
// browser's Last-Event-ID) and sends lines with POST /api/send. All text
// from the relay is shown with textContent, never as HTML. The name, the
// room, the token and the last event id are kept in localStorage, so a
// reload or a phone waking up rejoins and catches up by itself. The
// relay's password, when it has one, is kept in memory only, for a rejoin
// while the page is open; a room's key is sent once, with /join ROOM KEY,
// and not kept.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get: (k) => localStorage.getItem("roomrelay." + k),
  set: (k, v) => v == null ? localStorage.removeItem("roomrelay." + k) : localStorage.setItem("roomrelay." + k, v),
};

let token = store.get("token");
let es = null;          // the open EventSource
let retry = 1000;       // wait before rejoining, doubled up to 30s
let quietWho = false;   // a /who the page sent itself: its answer fills the list
let leaving = false;    // the page is being left: its stream's end is no error
let password = "";      // the relay's password, once asked for (never stored)
let keyRoom = "";       // the room the key form asks the key of
let fresh = false;      // the stream is a first join's: what it catches up on is the room's past, not missed
let caughtUp = false;   // the open stream has caught up: a room switch then clears its count
const seen = new Set(); // ids of room events shown, so a resume shows none twice
const here = new Set();

// The log follows its newest lines while it is scrolled to them (pinned),
// through a change of layout too: the key form opening, a phone's keyboard.
const log = $("log");
const nearEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
let pinned = true;
log.addEventListener("scroll", () => { pinned = nearEnd(); });
new ResizeObserver(() => { if (pinned) log.scrollTop = log.scrollHeight; }).observe(log);

function state(text, bad) {
  const s = $("state");
  s.textContent = text;
  s.className = bad ? "bad" : "";
}

function stamp(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
}

function span(cls, text) {
  const e = document.createElement("span");
  e.className = cls;
  e.textContent = text;
  return e;
}

// str is a field of an event as text: "" when the event has none (an
// empty message from an older relay or another door has no "text").
const str = (v) => v == null ? "" : String(v);

function showHere() {
  $("here").textContent = here.size ? "here: " + [...here].sort().join(", ") : "";
}

function line(ev) {
  const atEnd = pinned || nearEnd();
  const d = document.createElement("div");
  d.className = ev.type + (ev.from === store.get("name") ? " me" : "");
  if (ev.time) d.append(span("t", stamp(ev.time)));
  const from = str(ev.from), text = str(ev.text);
  switch (ev.type) {
    case "msg":
      d.append(span("from", from), ": " + text);
      break;
    case "action":
      d.append("* ", span("from", from), " " + text);
      break;
    case "private":
      d.append("[private] ", span("from", from), " → " + str(ev.to) + ": " + text);
      break;
    case "join":
      d.append("— " + from + " joined " + str(ev.room));
      break;
    case "part":
      d.append("— " + from + " left " + str(ev.room) + (text ? " (" + text + ")" : ""));
      break;
    case "error":
      d.append("! " + text);
      break;
    default:
      d.append("— " + text);
  }
  log.append(d);
  while (log.childElementCount > 1000) log.firstElementChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function event(ev, id) {
  if (ev.seq && id) {
    if (seen.has(id)) return;
    seen.add(id);
    if (seen.size > 4000) seen.delete(seen.values().next().value);
  }
  if (ev.type === "notice" && ev.room && ev.epoch) { // the welcome to a room
    if (caughtUp) state("connected"); // a room switch: the count was the last room's
    store.set("room", ev.room);
    $("room").textContent = ev.room;
    here.clear();
    showHere();
  }
  const text = str(ev.text);
  if (ev.type === "notice" && quietWho && text.startsWith("in " + store.get("room") + ":")) {
    for (const n of text.slice(text.indexOf(":") + 1).split(",")) if (n.trim()) here.add(n.trim());
    showHere();
    return;
  }
  const refused = ev.type === "error" && /^cannot join (\S+): (it has a key|wrong key)/.exec(text);
  if (refused) askKey(refused[1]);
  if (ev.type === "join" && ev.room === store.get("room")) here.add(ev.from);
  if (ev.type === "part" && ev.room === store.get("room")) here.delete(ev.from);
  if (ev.type === "join" || ev.type === "part") showHere();
  line(ev);
}

// open opens the event stream; resume (a reload with the token kept)
// asks for what came after the last event this browser showed.
function open(resume) {
  if (es) es.close();
  caughtUp = false;
  state("connecting…");
  let url = "/api/events?token=" + encodeURIComponent(token);
  if (resume && store.get("last")) url += "&last_event_id=" + encodeURIComponent(store.get("last"));
  es = new EventSource(url);
  es.onopen = () => {
    caughtUp = false;
    state("catching up…");
  };
  es.onmessage = (e) => {
    if (e.lastEventId) store.set("last", e.lastEventId);
    let ev;
    try { ev = JSON.parse(e.data); } catch { return; }
    event(ev, e.lastEventId);
  };
  es.addEventListener("caught-up", (e) => {
    // missed counts the messages the stream sent before it caught up: a
    // first join's are the room's recent past; only a resume's were missed.
    const n = JSON.parse(e.data).missed, s = n === 1 ? "" : "s";
    if (fresh) state(n ? "caught up, " + n + " earlier message" + s + " shown" : "caught up");
    else state("caught up, " + n + " missed message" + s + " shown");
    fresh = false;
    caughtUp = true;
    retry = 1000;
    quietWho = true;
    send("/who");
  });
  es.onerror = () => {
    if (leaving) return;
    fresh = false; // what the next stream catches up on came during the gap
    if (es && es.readyState !== EventSource.CLOSED) {
      state("reconnecting…", true);
      return;
    }
    // The stream was refused: find out whether the token is still good.
    es = null;
    state("reconnecting…", true);
    setTimeout(recover, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

// recover reopens the stream if the relay still knows the token (an
// empty /api/send answers 204), or joins again if it does not (404).
async function recover() {
  let status = 0;
  try {
    const r = await fetch("/api/send", { method: "POST", body: new URLSearchParams({ token, text: "" }), cache: "no-store" });
    status = r.status;
  } catch {}
  if (status === 204) {
    open(true);
  } else if (status === 404) {
    token = null;
    store.set("token", null);
    state("rejoining…", true);
    join(store.get("name"));
  } else {
    state("relay unreachable; retrying…", true);
    setTimeout(recover, retry);
    retry = Math.min(retry * 2, 30000);
  }
}

window.addEventListener("pagehide", () => {
  leaving = true;
  if (es) es.close();
});

async function join(name) {
  if (!name) return;
  const body = new URLSearchParams({ name });
  if (password) body.set("password", password);
  if (store.get("room")) body.set("room", store.get("room"));
  if (store.get("last")) body.set("last_event_id", store.get("last"));
  let r, j;
  try {
    r = await fetch("/api/join", { method: "POST", body, cache: "no-store" });
    j = await r.json();
  } catch {
    state("relay unreachable; retrying…", true);
    setTimeout(() => join(name), retry);
    retry = Math.min(retry * 2, 30000);
    return;
  }
  if (!r.ok) {
    if (r.status === 401) {
      // The relay's words are for scripts (they name the form field);
      // a person is asked in plain words, and told when it was wrong.
      login(password ? j.error : "this relay needs a password: type it above, then press Enter", true);
      password = "";
    } else if (r.status === 400 || r.status === 409) {
      store.set("name", null);
      login(j.error);
    } else {
      state(j.error + "; retrying…", true);
      setTimeout(() => join(name), retry);
      retry = Math.min(retry * 2, 30000);
    }
    return;
  }
  token = j.token;
  store.set("token", token);
  store.set("name", j.name);
  fresh = !body.has("last_event_id");
  chatting();
  open();
}

async function send(text) {
  if (!token) return false;
  try {
    const r = await fetch("/api/send", { method: "POST", body: new URLSearchParams({ token, text }), cache: "no-store" });
    if (r.status === 404) {
      if (es) es.close();
      es = null;
      recover();
    }
    return r.ok;
  } catch {
    state("not sent: relay unreachable", true);
    return false;
  }
}

function login(err, askPassword) {
  $("login").hidden = false;
  $("say").hidden = true;
  $("loginerr").textContent = err || "";
  $("name").value = store.get("name") || $("name").value;
  if (askPassword) {
    $("password").hidden = $("passwordlabel").hidden = false;
    $("password").required = true;
    $("password").value = "";
    if ($("name").value) {
      $("password").focus();
      return;
    }
  }
  $("name").focus();
}

// askKey shows the form that asks for the key of room, refused for want
// of it.
function askKey(room) {
  keyRoom = room;
  $("keylabel").textContent = "Key of " + room;
  $("keytext").value = "";
  $("key").hidden = false;
  $("keytext").focus();
}

$("key").addEventListener("submit", async (e) => {
  e.preventDefault();
  const k = $("keytext").value.trim();
  if (!k || /\s/.test(k)) return;
  $("key").hidden = true;
  quietWho = false;
  await send("/join " + keyRoom + " " + k);
  $("keytext").value = "";
});

$("keycancel").addEventListener("click", () => {
  $("key").hidden = true;
});

function chatting() {
  $("login").hidden = true;
  $("say").hidden = false;
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  if (!$("password").hidden) password = $("password").value;
  store.set("last", null);
  join(name);
});

$("say").addEventListener("submit", async (e) => {
  e.preventDefault();
  const t = $("text");
  if (!t.value.trim()) return;
  quietWho = false;
  if (await send(t.value)) t.value = "";
});

if (token && store.get("name")) {
  chatting();
  open(true);
} else if (store.get("name")) {
  join(store.get("name"));
} else {
  login();
}
