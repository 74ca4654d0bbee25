// The console's live chart: events per second, and delivery latency p50
// and p99, drawn on two canvases from the figures the page already polls.
// No library and nothing from another origin: a few lines on a canvas.

// keep is how many samples the chart shows: three minutes, one every 2s.
const keep = 90;
const colors = { rate: "#1a7f37", p50: "#1f6feb", p99: "#bf5700", grid: "#dde2e8", text: "#4a525c" };

// quantile estimates the q-quantile of the deliveries counted between two
// reads of a cumulative histogram (bounds le, counts per bound, total),
// interpolating inside the bucket that holds it as Prometheus's
// histogram_quantile does. Deliveries beyond the last bound count as the
// last bound. It is null when nothing was delivered.
export function quantile(le, counts, total, q) {
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < le.length; i++) {
    if (counts[i] >= rank) {
      const inBucket = counts[i] - below;
      return lower + (le[i] - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1);
    }
    lower = le[i];
    below = counts[i];
  }
  return le.at(-1) ?? null;
}

// delta is what a histogram counted between two reads; null when the
// gateway restarted (the counts went down) or the bounds changed.
function delta(prev, cur) {
  if (!prev || !cur || cur.count < prev.count || prev.le.join() !== cur.le.join()) return null;
  return { le: cur.le, counts: cur.counts.map((c, i) => c - prev.counts[i]), count: cur.count - prev.count };
}

export class Chart {
  constructor(rateCanvas, latencyCanvas) {
    this.rateCanvas = rateCanvas;
    this.latencyCanvas = latencyCanvas;
    this.samples = [];
    this.prev = null;
    // How many points each line holds, for tests and the curious.
    this.points = { rate: 0, p50: 0, p99: 0 };
    this.draw();
  }

  // add takes one answer of the stats endpoint.
  add(stats) {
    const d = delta(this.prev, stats.latency);
    this.prev = stats.latency;
    const ms = (q) => (d ? quantile(d.le, d.counts, d.count, q) : null);
    const p50 = ms(0.5);
    const p99 = ms(0.99);
    this.samples.push({ rate: stats.events_per_second, p50: p50 === null ? null : p50 * 1000, p99: p99 === null ? null : p99 * 1000 });
    if (this.samples.length > keep) this.samples.shift();
    this.draw();
  }

  // gap marks a poll without figures (no token, a network error), so the
  // lines break instead of joining across it.
  gap() {
    this.prev = null;
    this.samples.push({ rate: null, p50: null, p99: null });
    if (this.samples.length > keep) this.samples.shift();
    this.draw();
  }

  draw() {
    const col = (k) => this.samples.map((s) => s[k]);
    [this.points.rate] = plot(this.rateCanvas, [{ values: col("rate"), color: colors.rate, label: "" }], "/s");
    const [p50, p99] = [col("p50"), col("p99")];
    const n = plot(this.latencyCanvas, [{ values: p99, color: colors.p99, label: "p99 " }, { values: p50, color: colors.p50, label: "p50 " }], " ms");
    [this.points.p99, this.points.p50] = n;
  }
}

// plot draws lines on canvas, newest at the right, against a y axis from 0
// to a round maximum, and returns how many points each line has.
function plot(canvas, lines, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const h = canvas.clientHeight || 70;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  // Room for the labels above the plot.
  const top = 16;
  const all = lines.flatMap((l) => l.values).filter((v) => v !== null && Number.isFinite(v));
  const max = roundUp(Math.max(...all, 0));
  const y = (v) => top + (h - top - 2) * (1 - v / max);
  const x = (i, len) => w - 2 - (len - 1 - i) * ((w - 4) / (keep - 1));
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const v of [0, max / 2, max]) {
    ctx.moveTo(0, Math.round(y(v)) + 0.5);
    ctx.lineTo(w, Math.round(y(v)) + 0.5);
  }
  ctx.stroke();
  ctx.fillStyle = colors.text;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top";
  ctx.fillText(all.length ? `max ${format(max)}${unit}` : "no figures yet", 2, 0);
  const counts = lines.map(({ values, color }) => {
    let n = 0;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      const [px, py] = [x(i, values.length), y(Math.min(v, max))];
      if (pen) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      // A lone point between gaps still shows.
      ctx.fillRect(px - 1, py - 1, 2, 2);
      pen = true;
      n++;
    });
    ctx.stroke();
    return n;
  });
  // The newest value of each line, right-aligned at the top: the answer
  // to "how fast, now?". Screen readers get the same words.
  ctx.textAlign = "right";
  let right = w - 2;
  const said = [];
  for (const { values, color, label } of lines) {
    const last = values.findLast((v) => v !== null && Number.isFinite(v));
    if (last === undefined) continue;
    const text = `${label}${format(last)}${unit}`;
    ctx.fillStyle = color;
    ctx.fillText(text, right, 0);
    right -= ctx.measureText(text).width + 8;
    said.push(text);
  }
  canvas.setAttribute("aria-label", said.length ? "now " + said.reverse().join(", ") : "no figures yet");
  return counts;
}

// roundUp is the smallest of 1, 2 or 5 times a power of ten at or above v.
function roundUp(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function format(v) {
  return v >= 10 || v === 0 ? String(Math.round(v)) : String(Number(v.toPrecision(2)));
}
