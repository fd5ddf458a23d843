-- wrk script: GET /v1/invoices as a random customer from TOKENS_FILE, with a fixed
-- pause after each response so that N connections approximate a target rate.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local pause = tonumber(os.getenv("PAUSE_MS") or "0")

function setup(thread)
  thread:set("id", math.random(1, 1000000))
end

function init(args)
  math.randomseed(os.time() + (id or 0))
end

function request()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", "/v1/invoices", { ["Authorization"] = "Bearer " .. token })
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f "
      .. "max_ms=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status, e.connect,
    e.read, e.write, e.timeout))
end
