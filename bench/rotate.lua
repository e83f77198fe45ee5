-- wrk script for bench/serve_bench.py: rotate through request paths, one per request.
--
-- Configured through the environment (wrk's init(args) only reaches the thread states,
-- and done() runs in the main state, so the environment is the one place both can read):
--   BENCH_PATHS   file with one request path per line (e.g. /img/kodak/kodim01.png?w=600)
--   BENCH_RESULT  where done() writes a one-line JSON summary
--   BENCH_UNIQUE  "1": append &bg=RRGGBB, a different colour for every request, so each URL is
--                 new to the result cache (bg only matters for fit=fill or alpha, so the work
--                 is unchanged on opaque sources with fit=crop/clip)
--   BENCH_SALT    integer offset for the bg counter, so separate runs never repeat a URL
-- Several wrk threads (-tN) each start their counter at their own offset (setup), so unique
-- URLs stay unique across threads.

local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if #line > 0 then
    paths[#paths + 1] = line
  end
end

local unique = os.getenv("BENCH_UNIQUE") == "1"
local salt = tonumber(os.getenv("BENCH_SALT") or "0")
local counter = 0
local made = 0

function setup(thread)
  thread:set("offset", made * 1000003)
  made = made + 1
end

function request()
  local path = paths[(counter % #paths) + 1]
  if unique then
    path = path .. string.format("&bg=%06x", (salt + (offset or 0) + counter) % 16777215)
  end
  counter = counter + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  local out = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
  out:close()
end
