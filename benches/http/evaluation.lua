-- wrk script: POST one fixed AuthZEN access evaluation with a bearer token.
-- The token comes from the HANDOFF_BENCH_TOKEN environment variable
-- (benches/http/run.sh creates a `pdp` token and sets it); the body from
-- HANDOFF_BENCH_BODY when set (benches/http/cluster.sh), else the
-- certification pack's request below.
-- Usage: wrk -t1 -c64 -d20s --latency -s evaluation.lua http://127.0.0.1:PORT/access/v1/evaluation

wrk.method = "POST"
wrk.body = os.getenv("HANDOFF_BENCH_BODY")
  or '{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("HANDOFF_BENCH_TOKEN") or "")

local statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50: %.2f ms  p90: %.2f ms  p99: %.2f ms  max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
