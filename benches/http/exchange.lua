-- wrk script: one RFC 8693 token exchange per request on POST /oauth2/token.
-- Every request hands an agent token to the same service, so each 200 is a
-- new delegation row and a `delegation.create` audit record. With one
-- token in the file (the default) every request exchanges the same token;
-- with several, requests take them in turn.
-- benches/http/exchange.sh sets the environment:
--   HANDOFF_BENCH_SUBJECT_TOKENS  a file of agent tokens, one a line
--   HANDOFF_BENCH_BASIC           base64 of "<client_id>:<secret>" (client_secret_basic)
-- Usage: wrk -t1 -c32 -d20s --latency -s exchange.lua http://127.0.0.1:PORT/oauth2/token

local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function body(token)
  return "grant_type=" .. form_escape("urn:ietf:params:oauth:grant-type:token-exchange")
    .. "&subject_token=" .. form_escape(token)
    .. "&subject_token_type=" .. form_escape("urn:ietf:params:oauth:token-type:jwt")
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. (os.getenv("HANDOFF_BENCH_BASIC") or "")

local bodies = {}
for line in io.lines(os.getenv("HANDOFF_BENCH_SUBJECT_TOKENS")) do
  if line ~= "" then table.insert(bodies, body(line)) end
end

if #bodies == 1 then
  -- One fixed request: wrk sends it without calling Lua per request.
  wrk.body = bodies[1]
else
  local made = 0
  function request()
    made = made + 1
    return wrk.format(nil, nil, nil, bodies[(made % #bodies) + 1])
  end
end

-- Per-thread status counts, collected in done() through thread:get.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
  first_other = ""
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
    if first_other == "" then
      first_other = status .. " " .. body
    end
  end
end

function done(summary, latency, requests)
  local ok_total, other_total, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
    if sample == "" then sample = t:get("first_other") end
  end
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50: %.2f ms  p90: %.2f ms  p99: %.2f ms  max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("responses: %d x 200, %d other\n", ok_total, other_total))
  if sample ~= "" then io.write("first non-200: " .. sample .. "\n") end
  io.write(string.format("socket errors: %d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  -- Read by exchange.sh to compare with the audit log.
  local f = io.open(os.getenv("HANDOFF_BENCH_RESULT") or "/dev/null", "w")
  if f then
    f:write(string.format("%d %d\n", ok_total, other_total))
    f:close()
  end
end
