-- wrk script: bench/ingest/body.lua on a fixed schedule of <rate> requests/s (per wrk thread: use -t1).
--   wrk -t1 -c64 -s bench/ingest/paced.lua URL -- <template file> <run prefix> <bearer credential> <rate>
--
-- wrk asks delay() before every request on every connection (the first one too). delay() hands out
-- the next slot of one global timetable, start + n / rate, read from CLOCK_MONOTONIC through LuaJIT's
-- FFI, so arrivals are evenly spaced whatever the latency as long as a connection is free at each
-- slot. `late` counts requests that went out more than LATE_MS after their slot, because no
-- connection was free (the schedule then catches up, as open-loop arrivals would) or wrk's timer
-- fired late; done() reports it with the worst lateness. Keep it near 0 with enough connections, or
-- the latency figures leave out the waiting (coordinated omission).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "body.lua")

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *spec);
]])
local spec = ffi.new("bench_timespec")
local interval, start, slot = nil, nil, 0
local LATE_MS = 5

local function now_ms()
  ffi.C.clock_gettime(1, spec) -- CLOCK_MONOTONIC
  return tonumber(spec.tv_sec) * 1000 + tonumber(spec.tv_nsec) / 1e6
end

function set_rate(rate)
  interval = 1000 / rate
end

function delay()
  local now = now_ms()
  start = start or now
  local due = start + slot * interval
  slot = slot + 1
  if now - due > LATE_MS then
    late = late + 1
    max_late = math.max(max_late, now - due)
  end
  return math.max(0, math.floor(due - now + 0.5))
end
