// node dashboard/dashboard.test.js — the dashboard's parsing and quantile logic (run by
// tests/dashboard.rs when node is installed).
"use strict";
const assert = require("node:assert/strict");
const {
  parseMetrics, labelKey, sumBy, rate, bucketsOf, quantile, bucketDelta, applyL2, depthRows,
} = require("./dashboard.js");

const text = [
  "# HELP exchange_orders_in_total Orders.",
  "# TYPE exchange_orders_in_total counter",
  'exchange_orders_in_total{type="limit"} 30',
  'exchange_orders_in_total{type="market"} 12',
  'exchange_rejects_total{reason="price \\"band\\""} 4',
  "exchange_sessions 3",
  'h_bucket{stage="match",le="0.000001"} 10',
  'h_bucket{stage="match",le="0.000002"} 90',
  'h_bucket{stage="match",le="+Inf"} 100',
  'h_sum{stage="match"} 0.00015',
  "not a sample line",
].join("\n");

const samples = parseMetrics(text);
assert.equal(samples.length, 8);
assert.deepEqual(samples[2].labels, { reason: 'price "band"' });
assert.equal(sumBy(samples, "exchange_orders_in_total", "").get(""), 42);
assert.equal(sumBy(samples, "exchange_orders_in_total", "type").get("market"), 12);
assert.equal(labelKey({ le: "1", b: "2", a: "1" }), 'a="1",b="2"');

assert.equal(rate(150, 100, 2), 25);
assert.equal(rate(5, 100, 1), 5, "a reset counts from zero");
assert.equal(rate(5, undefined, 1), null);

const buckets = bucketsOf(samples, "h", 'stage="match"');
assert.deepEqual(buckets.map((b) => b.le), [0.000001, 0.000002, Infinity]);
// As histogram_quantile: rank 50 of 100 lies 40/80 of the way into (1 µs, 2 µs].
assert.ok(Math.abs(quantile(0.5, buckets) - 0.0000015) < 1e-12);
assert.ok(Math.abs(quantile(0.05, buckets) - 0.0000005) < 1e-12);
// In the +Inf bucket: the highest finite bound.
assert.equal(quantile(0.95, buckets), 0.000002);
assert.equal(quantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }]), null);

const before = buckets.map((b) => ({ le: b.le, count: b.count / 2 }));
assert.deepEqual(bucketDelta(buckets, before).map((b) => b.count), [5, 45, 50]);
assert.equal(bucketDelta(buckets, null), null);
// The depth panel's book: a level2 snapshot, then updates (qty 0 removes a level).
let book = applyL2(null, { type: "l2update", side: "buy", price: "1.00", qty: 1, count: 1 });
assert.equal(book, null, "an update before the snapshot is ignored");
book = applyL2(book, {
  type: "snapshot",
  bids: [{ price: "100.50", qty: 3, count: 2 }, { price: "99.00", qty: 5, count: 1 }],
  asks: [{ price: "101.00", qty: 2, count: 1 }],
});
book = applyL2(book, { type: "l2update", side: "buy", price: "100.75", qty: 4, count: 1 });
book = applyL2(book, { type: "l2update", side: "sell", price: "101.00", qty: 0, count: 0 });
book = applyL2(book, { type: "l2update", side: "sell", price: "101.25", qty: 7, count: 2 });
book = applyL2(book, { type: "trade", price: "100.50", qty: 1 });
assert.deepEqual(depthRows(book, 2), { bids: [["100.75", 4], ["100.50", 3]], asks: [["101.25", 7]] });
assert.deepEqual(depthRows(null, 2), { bids: [], asks: [] });
console.log("dashboard.test.js: ok");
