// ssegate browser client: one live feed of a set of channels that resumes
// across reconnects, new credentials and page reloads, and falls back to
// long-polling where a proxy holds the stream back. No dependencies.
//
//   import { connect } from "/events/client.js";
//   const feed = connect({ channels: ["orders"], ticket: async () => (await (await fetch("/my/ticket")).json()).ticket });
//   feed.on("order.paid", (e) => console.log(e.id, e.data));
//   feed.on("reset", (r) => reloadState(r.reason));
//
// The stream is read with fetch rather than EventSource: it sees the
// status (an EventSource gives up for good on a 401, without saying why)
// and the first comment, which is how it tells a buffering proxy apart.

const DEFAULTS = {
  url: "/events",
  pollUrl: null, // default: url + "/poll"
  channels: [],
  events: [], // only these event names ("message" is an unnamed event)
  ticket: null, // async () => ticket string, called before each request
  credentials: "same-origin",
  storage: globalThis.localStorage ?? null,
  fallbackAfter: 5000, // ms without a byte before long-polling
  // ms of long-polling before the stream is tried again, doubling after
  // each try that falls back again, up to max; a working stream resets it.
  streamRetry: { initial: 60000, max: 600000 },
  pollWait: "25s",
  backoff: { initial: 1000, max: 30000 },
};

// Lifecycle events; the events of the channels use their own names.
export const OPEN = "ssegate:open";
export const FALLBACK = "ssegate:fallback";
export const STREAM_RETRY = "ssegate:stream-retry";
export const ERROR = "ssegate:error";
export const RESET = "reset";

export function connect(options) {
  const c = new Client(options);
  c.start();
  return c;
}

export class Client extends EventTarget {
  #o;
  #abort = null;
  #closed = false;
  #failures = 0;
  #retry = 2000;
  #lastId = null;
  #polling = false;
  #streamTries = 0;
  #retryAt = 0;
  transport = "stream";

  constructor(options) {
    super();
    this.#o = { ...DEFAULTS, ...options };
    if (!this.#o.channels.length) throw new Error("ssegate: no channels");
    this.#o.pollUrl ??= this.#o.url.replace(/\/$/, "") + "/poll";
    this.#lastId = this.#load();
  }

  // The position every event of the channels has been received up to,
  // kept in storage per set of channels and filter.
  get lastId() {
    return this.#lastId;
  }

  // on calls fn with the detail of every event of this name, and returns
  // what stops it.
  on(name, fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener(name, h);
    return () => this.removeEventListener(name, h);
  }

  start() {
    this.#run().catch((err) => this.#emit(ERROR, { error: String(err) }));
  }

  close() {
    this.#closed = true;
    this.#abort?.abort();
  }

  async #run() {
    while (!this.#closed) {
      if (this.transport === "stream") await this.#streamOnce();
      else await this.#pollUntilRetry();
    }
  }

  // #pollUntilRetry long-polls until it is time to try the stream again
  // (a proxy that buffered may have gone, or the network changed); the
  // poll in progress then ends first, so it may be up to pollWait late.
  async #pollUntilRetry() {
    while (!this.#closed && Date.now() < this.#retryAt) await this.#pollOnce();
    if (this.#closed) return;
    this.transport = "stream";
    const detail = { attempt: this.#streamTries, reason: "trying the stream again after long-polling" };
    console.info("ssegate:", detail.reason);
    this.#emit(STREAM_RETRY, detail);
  }

  // #fallBack switches to long-polling until the next try of the stream.
  #fallBack() {
    const { initial, max } = this.#o.streamRetry;
    const retryIn = Math.min(max, initial * 2 ** this.#streamTries++);
    this.transport = "poll";
    this.#polling = false;
    this.#retryAt = Date.now() + retryIn;
    const detail = {
      reason: `nothing arrived on the stream within ${this.#o.fallbackAfter} ms; long-polling instead, and trying the stream again in ${Math.round(retryIn / 1000)} s`,
      retryIn,
    };
    console.warn("ssegate:", detail.reason);
    this.#emit(FALLBACK, detail);
  }

  // #streamOnce reads one stream to its end, and waits before the next.
  async #streamOnce() {
    const ctrl = (this.#abort = new AbortController());
    let heard = false;
    const timer = setTimeout(() => {
      if (!heard) ctrl.abort("fallback");
    }, this.#o.fallbackAfter);
    try {
      const q = await this.#query();
      if (q === null) return;
      if (this.#lastId) q.set("last_event_id", this.#lastId);
      const res = await fetch(this.#o.url + "?" + q, {
        signal: ctrl.signal, credentials: this.#o.credentials, cache: "no-store",
        headers: { Accept: "text/event-stream" },
      });
      if (!res.ok) clearTimeout(timer); // an answer, if not a stream
      if (!(await this.#usable(res))) return;
      this.#emit(OPEN, { transport: "stream" });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parse = parser((ev) => this.#dispatch(ev), (ms) => (this.#retry = ms));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!heard) {
          heard = true;
          this.#failures = 0;
          this.#streamTries = 0;
        }
        parse(value);
      }
      await sleep(this.#retry);
    } catch (err) {
      if (ctrl.signal.reason === "fallback") {
        this.#fallBack();
      } else if (!this.#closed) {
        this.#emit(ERROR, { error: String(err) });
        await this.#backoff();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // #pollOnce asks for the events after lastId and dispatches them.
  async #pollOnce() {
    const ctrl = (this.#abort = new AbortController());
    try {
      const q = await this.#query();
      if (q === null) return;
      if (this.#lastId) q.set("after", this.#lastId);
      q.set("wait", this.#o.pollWait);
      const res = await fetch(this.#o.pollUrl + "?" + q, { signal: ctrl.signal, credentials: this.#o.credentials, cache: "no-store" });
      if (!(await this.#usable(res))) return;
      const a = await res.json();
      this.#failures = 0;
      if (!this.#polling) {
        this.#polling = true;
        this.#emit(OPEN, { transport: "poll" });
      }
      if (a.reset) this.#emit(RESET, { reason: a.reset.reason, id: a.last_id });
      for (const e of a.events) this.#dispatch({ id: e.id, event: e.event, data: e.data, channel: e.channel });
      this.#store(a.last_id);
    } catch (err) {
      if (this.#closed) return;
      this.#emit(ERROR, { error: String(err) });
      await this.#backoff();
    }
  }

  // #query builds the request's parameters, with a fresh ticket when a
  // callback gives them (tickets are single use); null when closed.
  async #query() {
    const q = new URLSearchParams();
    for (const ch of this.#o.channels) q.append("channel", ch);
    for (const ev of this.#o.events) q.append("event", ev);
    if (this.#o.ticket) {
      const t = await this.#o.ticket();
      if (t) q.set("ticket", t);
    }
    return this.#closed ? null : q;
  }

  // #usable says whether res can be read; otherwise it reports why and
  // waits: after a 401 the next try mints a new ticket.
  async #usable(res) {
    if (res.ok) return true;
    let body = {};
    try {
      body = await res.json();
    } catch {}
    this.#emit(ERROR, { status: res.status, error: body.error ?? res.statusText, detail: body.detail });
    // A refusal that a new ticket or a later try cannot mend ends the
    // client; anything else (401, 429, a gateway or proxy down) is tried
    // again after a while.
    if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 429) this.close();
    else await this.#backoff();
    return false;
  }

  #dispatch(ev) {
    if (ev.id) this.#store(ev.id);
    // A block with an id and no data moves the position and nothing else.
    if (ev.data === undefined) return;
    const name = ev.event || "message";
    if (name === RESET) {
      let reason = "";
      try {
        reason = JSON.parse(ev.data).reason;
      } catch {}
      this.#emit(RESET, { reason, id: ev.id });
      return;
    }
    this.#emit(name, { id: ev.id, event: name, data: ev.data, channel: ev.channel });
  }

  #emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  async #backoff() {
    const { initial, max } = this.#o.backoff;
    const ceiling = Math.min(max, initial * 2 ** this.#failures++);
    await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  // storageKey is where lastId is kept.
  get storageKey() {
    return this.#key();
  }

  #key() {
    const ch = [...this.#o.channels].sort().join(",");
    const ev = [...this.#o.events].sort().join(",");
    return `ssegate:last:${ch}|${ev}`;
  }

  #load() {
    try {
      return this.#o.storage?.getItem(this.#key()) ?? null;
    } catch {
      return null;
    }
  }

  #store(id) {
    if (!id) return;
    this.#lastId = id;
    try {
      this.#o.storage?.setItem(this.#key(), id);
    } catch {}
  }
}

// parser returns a function fed with text as it arrives; it calls onEvent
// with each event block ({id, event, data}, data undefined for a block
// without data, which only moves the id) and onRetry with retry fields,
// following the WHATWG rules for text/event-stream.
export function parser(onEvent, onRetry) {
  let buf = "";
  let data = [];
  let event = "";
  let id = null;
  return (text) => {
    buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buf);
      if (!m) return;
      // A lone CR at the end may be the first half of a CRLF.
      if (m[0] === "\r" && m.index === buf.length - 1) return;
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === "") {
        if (id !== null || data.length) onEvent({ id, event, data: data.length ? data.join("\n") : undefined });
        data = [];
        event = "";
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && !value.includes("\0")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
    }
  };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
