// ssegate console: subscribes to channels, shows every event, publishes,
// and shows the gateway's figures.
//
// It reads each stream with fetch instead of EventSource, parsing the
// text/event-stream format as the WHATWG spec says, because an EventSource
// hides what a console must show: events whose names nobody registered a
// listener for, the comments in which the gateway says why it ended a
// stream, and the JSON body of a refusal. Like an EventSource, it gives up
// for good on any answer but 200 text/event-stream, reconnects after the
// stream's retry delay when a stream ends or the network fails, and sends
// the last event id when it does. Each channel has its own stream, so that
// every event shows which channel it came from.

import { Chart } from "./chart.js";
import { initPresence } from "./presence.js";

const $ = (id) => document.getElementById(id);
const tokenKey = "ssegate-console:token";
const positionKey = (ch) => "ssegate-console:last-id:" + ch;
const maxChannels = 8;
const maxRows = 500;
const statsEvery = 2000;

// What tests and curious users can inspect from the devtools console.
const state = { config: null, readers: new Map(), events: [], chart: null };

// Where a token comes from, for the first hour: the gateway's README has
// how backends mint their own.
const tokenHowTo = "go run ./cmd/token -sub me -channel '>' -publish '>'";
window.ssegateConsole = state;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clock = (d) => d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
const token = () => $("token").value.trim();
const authHeaders = () => (token() ? { Authorization: "Bearer " + token() } : {});
const pageProtocol = () => performance.getEntriesByType("navigation")[0]?.nextHopProtocol || "";

// describe turns a refusal into "401 ticket_used: ...", from the JSON body
// every ssegate endpoint answers errors with.
async function describe(resp) {
  let text = "";
  try {
    text = await resp.text();
    const j = JSON.parse(text);
    if (j.error) return `${resp.status} ${j.error}${j.detail ? ": " + j.detail : ""}`;
  } catch {
    // Not JSON: a proxy's page, for example; show its start.
  }
  return `${resp.status} ${resp.statusText}${text ? ": " + text.slice(0, 120) : ""}`;
}

async function fetchTicket(channel) {
  if (!state.config.ticket) return { error: "no ticket endpoint is configured (auth ticket_path)" };
  const resp = await fetch(state.config.ticket, {
    method: "POST",
    headers: { ...authHeaders(), "Content-Type": "application/json" },
    body: JSON.stringify({ channels: [channel] }),
  });
  if (!resp.ok) return { error: "ticket: " + (await describe(resp)) };
  return { ticket: (await resp.json()).ticket };
}

class Reader {
  constructor(channel) {
    this.channel = channel;
    this.lastId = localStorage.getItem(positionKey(channel)) || "";
    this.retry = 2000;
    this.reconnects = 0;
    this.protocol = "";
    this.heartbeat = "";
    this.reason = "";
    this.state = "connecting";
    this.stopped = false;
    this.ctrl = null;
    this.row = document.createElement("tr");
    this.row.dataset.channel = channel;
    $("connections").tBodies[0].append(this.row);
    this.render();
  }

  set(state, reason) {
    this.state = state;
    if (reason !== undefined) this.reason = reason;
    this.render();
  }

  render() {
    const cells = [this.channel, this.state, this.protocol, String(this.reconnects), this.lastId, this.heartbeat, this.reason];
    this.row.replaceChildren(...cells.map((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) td.className = "state-" + this.state;
      if (i === 6) td.className = "reason";
      return td;
    }));
  }

  stop() {
    this.stopped = true;
    this.ctrl?.abort();
    this.set("stopped");
  }

  async run() {
    for (let first = true; !this.stopped; first = false) {
      if (!first) {
        this.reconnects++;
        this.set("reconnecting");
        await sleep(this.retry);
        if (this.stopped) return;
      }
      if (!(await this.connect())) return;
    }
  }

  // connect runs one connection; it returns whether to reconnect.
  async connect() {
    const url = new URL(state.config.stream, location.href);
    url.searchParams.set(state.config.channel_param, this.channel);
    if (this.lastId) url.searchParams.set("last_event_id", this.lastId);
    let headers = authHeaders();
    if ($("use-ticket").checked) {
      const t = await fetchTicket(this.channel);
      if (t.error) {
        this.set("refused", t.error);
        return false;
      }
      url.searchParams.set("ticket", t.ticket);
      headers = {};
    }
    this.ctrl = new AbortController();
    this.set("connecting");
    let resp;
    try {
      resp = await fetch(url, { headers, cache: "no-store", signal: this.ctrl.signal });
    } catch (err) {
      if (this.stopped) return false;
      this.reason = "network error: " + err.message;
      return true;
    }
    const type = resp.headers.get("Content-Type") || "";
    if (resp.status !== 200 || !type.startsWith("text/event-stream")) {
      // An EventSource fails for good here too; the body says why.
      this.set("refused", await describe(resp));
      return false;
    }
    this.protocol = pageProtocol();
    // The reason of the last end stays until the next one: it explains
    // the reconnect that brought the stream back.
    this.set("open");
    const end = await this.read(resp.body);
    // Resource timing has the stream's own protocol once it has ended.
    const entry = performance.getEntriesByName(url.href).at(-1);
    if (entry?.nextHopProtocol) this.protocol = entry.nextHopProtocol;
    if (this.stopped) return false;
    this.reason = end;
    return true;
  }

  // read parses the stream until it ends, and returns why it ended.
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let data = [];
    let name = "";
    let idBuf = this.lastId;
    let end = "the stream ended";
    const line = (l) => {
      if (l === "") {
        // Dispatch. The id moves even for a block without data, which is
        // how the gateway rewinds a client's position.
        this.lastId = idBuf;
        if (idBuf) localStorage.setItem(positionKey(this.channel), idBuf);
        else localStorage.removeItem(positionKey(this.channel));
        if (data.length > 0) show({ channel: this.channel, type: name || "message", id: idBuf, data: data.join("\n") });
        data = [];
        name = "";
        this.render();
        return;
      }
      if (l[0] === ":") {
        const text = l.slice(1).trim();
        if (text.startsWith("end: ")) end = "ended by the gateway: " + text.slice(5);
        else if (text === "") this.heartbeat = clock(new Date());
        this.render();
        return;
      }
      const i = l.indexOf(":");
      const field = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? "" : l.slice(i + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") name = value;
      else if (field === "id" && !value.includes("\0")) idBuf = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        for (let m; (m = /\r\n|\r|\n/.exec(buf)); ) {
          // A CR at the very end may be the first half of a CRLF.
          if (m[0] === "\r" && m.index === buf.length - 1) break;
          line(buf.slice(0, m.index));
          buf = buf.slice(m.index + m[0].length);
        }
      }
    } catch (err) {
      if (!this.stopped) end = "connection lost: " + err.message;
    }
    return end;
  }
}

function show(ev) {
  const e = { time: new Date().toISOString(), ...ev };
  state.events.push(e);
  if (state.events.length > maxRows) state.events.shift();
  const tr = document.createElement("tr");
  tr.className = "new";
  const cells = [clock(new Date(e.time)), e.channel, e.type, e.id, e.data];
  tr.append(...cells.map((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (i === 2 && e.type === "reset") td.className = "event-reset";
    if (i === 4) td.className = "data";
    return td;
  }));
  const body = $("events").tBodies[0];
  body.prepend(tr);
  while (body.rows.length > maxRows) body.lastElementChild.remove();
}

function channelsFromInput() {
  const seen = new Set();
  for (const c of $("channels").value.split(/[\s,]+/)) if (c) seen.add(c);
  return [...seen].slice(0, maxChannels);
}

function subscribe() {
  for (const r of state.readers.values()) r.stop();
  state.readers.clear();
  $("connections").tBodies[0].replaceChildren();
  const channels = channelsFromInput();
  // The link reopens the same subscription.
  const u = new URL(location.href);
  u.searchParams.delete("channel");
  for (const c of channels) u.searchParams.append("channel", c);
  history.replaceState(null, "", u);
  if (channels.length > 0 && !$("pub-channel").value) $("pub-channel").value = channels[0];
  for (const c of channels) {
    const r = new Reader(c);
    state.readers.set(c, r);
    r.run();
  }
}

async function publish(e) {
  e.preventDefault();
  const out = $("pub-result");
  const url = new URL(state.config.publish, location.href);
  url.searchParams.set("channel", $("pub-channel").value.trim());
  if ($("pub-event").value.trim()) url.searchParams.set("event", $("pub-event").value.trim());
  const headers = { ...authHeaders(), "Content-Type": "text/plain; charset=utf-8" };
  if ($("pub-key").value.trim()) headers["Idempotency-Key"] = $("pub-key").value.trim();
  out.className = "";
  out.textContent = "publishing…";
  try {
    const resp = await fetch(url, { method: "POST", headers, body: $("pub-data").value });
    if (resp.ok) {
      const j = await resp.json();
      out.className = "ok";
      out.textContent = `${resp.status} stored as ${j.id}${j.duplicate ? " (a retry: stored before)" : ""}`;
    } else {
      out.className = "error";
      out.textContent = await describe(resp);
      // 401: no token or a bad one; 403 forbidden: a token without the
      // publish claim. Both are fixed with a token that may publish.
      if (resp.status === 401 || resp.status === 403) {
        out.textContent += ` (a publish token, pasted as Token: go run ./cmd/token -sub me -publish ${$("pub-channel").value.trim() || "<channel>"})`;
      }
    }
  } catch (err) {
    out.className = "error";
    out.textContent = "network error: " + err.message;
  }
}

async function pollStats() {
  for (;;) {
    const note = $("stat-note");
    try {
      const resp = await fetch("stats", { headers: authHeaders(), cache: "no-store" });
      if (resp.ok) {
        const s = await resp.json();
        $("stat-clients").textContent = s.clients;
        $("stat-channels").textContent = s.channels;
        $("stat-rate").textContent = s.events_per_second;
        $("stat-nats").textContent = `${s.nats}, JetStream ${s.jetstream}`;
        note.textContent = "";
        state.chart.add(s);
      } else if (resp.status === 401) {
        note.textContent = "the figures need a token or cookie: paste one as Token below";
        state.chart.gap();
      } else {
        note.textContent = "figures: " + (await describe(resp));
        state.chart.gap();
      }
    } catch (err) {
      note.textContent = "figures: " + err.message;
      state.chart.gap();
    }
    await sleep(statsEvery);
  }
}

async function main() {
  $("page-protocol").textContent = pageProtocol() || "?";
  const resp = await fetch("config.json", { cache: "no-store" });
  state.config = await resp.json();
  if (!state.config.publish) {
    $("publish").hidden = true;
    $("publish-off").hidden = false;
  }
  const params = new URLSearchParams(location.search);
  $("channels").value = params.getAll("channel").join(", ");
  // The token lives in this tab only, so that a reload resumes.
  $("token").value = sessionStorage.getItem(tokenKey) || "";
  $("token").addEventListener("change", () => sessionStorage.setItem(tokenKey, token()));
  $("token-howto").textContent = tokenHowTo;
  const hint = () => ($("token-hint").hidden = token() !== "");
  $("token").addEventListener("input", hint);
  hint();
  state.chart = new Chart($("chart-rate"), $("chart-latency"));
  $("subscribe").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(tokenKey, token());
    subscribe();
  });
  $("stop").addEventListener("click", () => state.readers.forEach((r) => r.stop()));
  $("forget").addEventListener("click", () => channelsFromInput().forEach((c) => localStorage.removeItem(positionKey(c))));
  $("clear").addEventListener("click", () => {
    state.events.length = 0;
    $("events").tBodies[0].replaceChildren();
  });
  $("publish").addEventListener("submit", publish);
  initPresence(state.config, authHeaders, describe);
  if (channelsFromInput().length > 0) subscribe();
  pollStats();
}

main();
