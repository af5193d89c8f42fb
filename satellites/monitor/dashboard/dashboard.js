// The venue's live dashboard: polls /metrics each second and charts rates, latency percentiles,
// rejects by reason, sessions and journal sync lag with uPlot (vendored, no CDN); shows the book
// depth of a chosen symbol from the market-data WebSocket (`/ws`, level2) when the venue serves it.
// The pure functions (parsing, quantiles, rates) are exported for the node test beside this file.
"use strict";

const POLL_MS = 1000;
/** Points kept per chart: five minutes at one poll a second. */
const HISTORY_MAX = 300;
const COLOURS = ["#2f7ed8", "#e4572e", "#29a36a", "#f2a541", "#7b4fd6", "#17becf", "#8c564b", "#e377c2"];

/** Prometheus text → [{name, labels: {k: v}, value}]; comments and malformed lines are skipped. */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[2] || "")) !== null) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/** A stable key for a label set, without `le`. */
function labelKey(labels) {
  return Object.keys(labels).filter((k) => k !== "le").sort().map((k) => `${k}="${labels[k]}"`).join(",");
}

/** Sum of `name`'s samples grouped by the value of label `by` ("" groups everything). */
function sumBy(samples, name, by) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = by ? (s.labels[by] ?? "") : "";
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** Per-second rate between two sums; a counter that went down (a restart) counts from 0. */
function rate(now, before, seconds) {
  if (before === undefined || seconds <= 0) return null;
  const delta = now >= before ? now - before : now;
  return delta / seconds;
}

/** Cumulative buckets of one histogram series: [{le, count}] sorted by le. */
function bucketsOf(samples, family, key) {
  const buckets = [];
  for (const s of samples) {
    if (s.name === family + "_bucket" && labelKey(s.labels) === key) {
      buckets.push({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value });
    }
  }
  return buckets.sort((a, b) => a.le - b.le);
}

/** As PromQL's histogram_quantile: linear inside the bucket holding rank q·total. */
function quantile(q, buckets) {
  if (buckets.length < 2) return null;
  const total = buckets[buckets.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let i = buckets.findIndex((b) => b.count >= rank);
  if (buckets[i].le === Infinity) return buckets[buckets.length - 2].le;
  const lower = i === 0 ? 0 : buckets[i - 1].le;
  const below = i === 0 ? 0 : buckets[i - 1].count;
  const inBucket = buckets[i].count - below;
  if (inBucket <= 0) return buckets[i].le;
  return lower + (buckets[i].le - lower) * ((rank - below) / inBucket);
}

/** The bucket counts gained between two scrapes of the same series. */
function bucketDelta(now, before) {
  if (!before || before.length !== now.length) return null;
  return now.map((b, i) => ({ le: b.le, count: Math.max(0, b.count - before[i].count) }));
}

/** Levels shown per side in the depth panel. */
const DEPTH_LEVELS = 10;

/**
 * Applies one level2 message of the WebSocket feed to `book` ({bids, asks}: Map price → {qty,
 * count}, prices as the feed's decimal strings): a snapshot replaces it, an l2update sets or (qty
 * 0) removes a level; other messages leave it. Returns the book.
 */
function applyL2(book, msg) {
  if (msg.type === "snapshot") {
    const side = (levels) => new Map((levels || []).map((l) => [l.price, { qty: l.qty, count: l.count }]));
    return { bids: side(msg.bids), asks: side(msg.asks) };
  }
  if (msg.type === "l2update" && book) {
    const levels = msg.side === "buy" ? book.bids : book.asks;
    if (msg.qty === 0) levels.delete(msg.price);
    else levels.set(msg.price, { qty: msg.qty, count: msg.count });
  }
  return book;
}

/** The best `n` levels of each side, best first: {bids: [[price, qty]], asks: [[price, qty]]}. */
function depthRows(book, n) {
  const best = (levels, descending) =>
    [...levels.entries()]
      .sort((a, b) => (descending ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0])))
      .slice(0, n)
      .map(([price, l]) => [price, l.qty]);
  return book ? { bids: best(book.bids, true), asks: best(book.asks, false) } : { bids: [], asks: [] };
}

if (typeof module !== "undefined") {
  module.exports = { parseMetrics, labelKey, sumBy, rate, bucketsOf, quantile, bucketDelta, applyL2, depthRows };
}

// ---- the page -----------------------------------------------------------------------------

if (typeof document !== "undefined") {
  const charts = {};
  const history = { t: [], series: {} };
  let previous = null;
  let polls = 0;

  function push(chart, key, value) {
    const series = (history.series[chart] ??= new Map());
    if (!series.has(key)) series.set(key, new Array(history.t.length - 1).fill(null));
    series.get(key).push(value);
  }

  function draw(id, title, unit) {
    const series = history.series[id] ?? new Map();
    for (const values of series.values()) {
      while (values.length < history.t.length) values.push(null);
      while (values.length > history.t.length) values.shift();
    }
    const keys = [...series.keys()];
    const data = [history.t, ...keys.map((k) => series.get(k))];
    const el = document.getElementById(id);
    let chart = charts[id];
    if (chart && chart.keys.join("\u0000") !== keys.join("\u0000")) {
      chart.plot.destroy();
      chart = null;
    }
    if (!chart) {
      const opts = {
        title,
        width: el.clientWidth || 560,
        height: 220,
        scales: { x: { time: true } },
        series: [{}, ...keys.map((k, i) => ({ label: k || title, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false }))],
        axes: [{}, { label: unit, size: 70 }],
      };
      el.textContent = "";
      chart = { plot: new uPlot(opts, data, el), keys };
      charts[id] = chart;
    } else {
      chart.plot.setData(data);
    }
  }

  function latencySeries(samples) {
    const select = document.getElementById("histogram");
    const families = new Set();
    const options = [];
    for (const s of samples) {
      if (!s.name.endsWith("_bucket")) continue;
      const family = s.name.slice(0, -"_bucket".length);
      const key = labelKey(s.labels);
      const option = key ? `${family}{${key}}` : family;
      if (!families.has(option)) {
        families.add(option);
        options.push({ option, family, key });
      }
    }
    if (select.options.length !== options.length) {
      const chosen = select.value;
      select.textContent = "";
      for (const o of options) select.add(new Option(o.option, o.option));
      const preferred = options.find((o) => o.family === "exchange_order_latency_seconds");
      select.value = families.has(chosen) ? chosen : preferred ? preferred.option : options[0]?.option ?? "";
    }
    return options.find((o) => o.option === select.value);
  }

  function update(text, nowMs) {
    const samples = parseMetrics(text);
    const seconds = previous ? (nowMs - previous.at) / 1000 : 0;
    history.t.push(nowMs / 1000);
    if (history.t.length > HISTORY_MAX) history.t.shift();

    const ordersNow = sumBy(samples, "exchange_orders_in_total", "").get("") ?? 0;
    const tradesNow = sumBy(samples, "exchange_trades_total", "").get("") ?? 0;
    const ordersRate = rate(ordersNow, previous?.orders, seconds);
    push("rates", "orders in /s", ordersRate);
    push("rates", "trades /s", rate(tradesNow, previous?.trades, seconds));

    const rejects = sumBy(samples, "exchange_rejects_total", "reason");
    for (const [reason, value] of rejects) {
      push("rejects", reason || "(none)", rate(value, previous?.rejects.get(reason), seconds));
    }

    const chosen = latencySeries(samples);
    const buckets = chosen ? bucketsOf(samples, chosen.family, chosen.key) : [];
    const delta = chosen && previous?.chosen === chosen.option ? bucketDelta(buckets, previous.buckets) : null;
    for (const [label, q] of [["p50", 0.5], ["p99", 0.99], ["p99.9", 0.999]]) {
      const v = delta ? quantile(q, delta) : null;
      push("latency", label, v === null ? null : v * 1e6);
    }

    push("sessions", "sessions", sumBy(samples, "exchange_sessions", "").get("") ?? null);
    for (const [journal, lag] of sumBy(samples, "exchange_journal_sync_lag_seconds", "journal")) {
      push("journal", journal || "journal", lag * 1e3);
    }

    const health = samples.filter((s) => s.name === "exchange_health_check");
    document.getElementById("health").innerHTML = health.length
      ? health.map((s) => `<span class="${s.value === 1 ? "ok" : "bad"}">${s.labels.probe}/${s.labels.check}</span>`).join(" ")
      : "no checks registered";
    polls += 1;
    document.getElementById("status").textContent =
      `polls ${polls} · last ${new Date(nowMs).toLocaleTimeString()} · orders in ${ordersNow}` +
      ` (${ordersRate === null ? "–" : ordersRate.toFixed(0)}/s) · trades ${tradesNow}`;
    // For the browser test: how many scrapes were drawn and the last order rate seen.
    document.body.dataset.polls = String(polls);
    document.body.dataset.ordersRate = ordersRate === null ? "" : String(ordersRate);

    depthSymbols(samples);
    draw("rates", "Order and trade rate", "per second");
    draw("latency", "Latency percentiles (last interval)", "µs");
    draw("rejects", "Rejects by reason", "per second");
    draw("sessions", "FIX sessions", "sessions");
    draw("journal", "Journal sync lag", "ms");
    previous = { at: nowMs, orders: ordersNow, trades: tradesNow, rejects, chosen: chosen?.option, buckets };
  }

  // Book depth: the symbols come from the resting-orders gauge; the book from /ws level2.
  const depth = { symbol: null, socket: null, book: null };

  function depthSymbols(samples) {
    const select = document.getElementById("depth-symbol");
    const resting = sumBy(samples, "exchange_resting_orders", "symbol");
    const symbols = [...resting.keys()].filter((s) => s).sort();
    if (select.options.length !== symbols.length) {
      const chosen = select.value;
      select.textContent = "";
      for (const s of symbols) select.add(new Option(s, s));
      // At first the symbol with the most resting orders; later the user's choice.
      const busiest = symbols.reduce((a, b) => ((resting.get(b) ?? 0) > (resting.get(a) ?? 0) ? b : a), symbols[0]);
      select.value = symbols.includes(chosen) ? chosen : busiest ?? "";
    }
    if (select.value && select.value !== depth.symbol) subscribeDepth(select.value);
  }

  document.getElementById("depth-symbol").onchange = (e) => subscribeDepth(e.target.value);

  function subscribeDepth(symbol) {
    if (depth.socket) depth.socket.close();
    depth.symbol = symbol;
    depth.book = null;
    drawDepth();
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.onopen = () => socket.send(JSON.stringify({ type: "subscribe", channel: "level2", symbol }));
    socket.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "error") {
        document.getElementById("depth").textContent = `market data: ${msg.reason}`;
        return;
      }
      depth.book = applyL2(depth.book, msg);
      drawDepth();
    };
    socket.onerror = () => {
      document.getElementById("depth").textContent = "no market-data feed (/ws) on this endpoint";
    };
    depth.socket = socket;
  }

  function drawDepth() {
    const el = document.getElementById("depth");
    const { bids, asks } = depthRows(depth.book, DEPTH_LEVELS);
    const most = Math.max(1, ...bids.map((r) => r[1]), ...asks.map((r) => r[1]));
    const row = (side, [price, qty]) =>
      `<tr class="${side}"><td>${side}</td><td>${price}</td><td>${qty}</td>` +
      `<td><div class="bar" style="width:${Math.round((qty / most) * 200)}px"></div></td></tr>`;
    el.innerHTML = depth.book
      ? `<table><tr><th>side</th><th>price</th><th>qty</th><th></th></tr>` +
        [...asks].reverse().map((r) => row("ask", r)).join("") +
        bids.map((r) => row("bid", r)).join("") + "</table>"
      : `waiting for the ${depth.symbol ?? ""} snapshot…`;
    // For the browser test: how many levels the panel shows.
    el.dataset.depthLevels = String(bids.length + asks.length);
  }

  async function poll() {
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      update(await response.text(), Date.now());
    } catch (e) {
      document.getElementById("status").textContent = `scrape failed: ${e.message}`;
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
}
