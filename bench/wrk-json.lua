-- SPDX-License-Identifier: Apache-2.0
-- wrk done() hook: prints one machine-readable line, "BENCH_JSON {...}", after wrk's own report,
-- so bench/measure.mjs never has to parse wrk's human units ("15.19k", "1.60ms").
-- Times are in microseconds, as wrk keeps them; only done() is defined, so wrk keeps its fast
-- static-request path.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
