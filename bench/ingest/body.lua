-- wrk script: POST a JSON body template to /v1/events with a unique id per request.
--   wrk -s bench/ingest/body.lua URL -- <template file> <run prefix> <bearer credential>
-- The template (bench/events.py `template()`) holds @@ID@@ wherever the unique part goes (event id,
-- order id, email, fbclid); each request gets <prefix>t<thread>n<counter>, so no two are equal.
--
-- bench/ingest/paced.lua adds a fixed-rate schedule on top of this script.
--
-- done() prints one line "WRKJSON {...}" with exact latency percentiles in microseconds.
local threads = {}
local counter = 0
local template, prefix, headers
late = 0
max_late = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a")
  file:close()
  prefix = args[2] .. "t" .. tostring(tid or 0) .. "n"
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[3] }
  if set_rate and args[4] then
    set_rate(tonumber(args[4]))
  end
end

function request()
  counter = counter + 1
  local body = template:gsub("@@ID@@", prefix .. counter)
  return wrk.format("POST", "/v1/events", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local late_total, late_max = 0, 0
  for _, thread in ipairs(threads) do
    late_total = late_total + (thread:get("late") or 0)
    late_max = math.max(late_max, thread:get("max_late") or 0)
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "non2xx": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d, "mean_us": %.1f, "late": %d, "max_late_ms": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, late_total, late_max))
end
