-- wrk script for bench/http_load.sh: POST /collections/<name>/search, cycling through request
-- bodies read from a file (one JSON object per line).
--   wrk ... -s bench/http_search.lua http://HOST:PORT -- BODIES_FILE COLLECTION [API_KEY]
local bodies = {}
local counter = 0

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  wrk.method = "POST"
  wrk.path = "/collections/" .. args[2] .. "/search"
  wrk.headers["Content-Type"] = "application/json"
  if args[3] then wrk.headers["Authorization"] = "Bearer " .. args[3] end
  counter = math.random(#bodies)  -- threads start at different queries
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[counter % #bodies + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT mode=http requests=%d seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status))
end
