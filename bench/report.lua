-- bench/report.lua — wrk script used by bench/run.sh.
--
-- Request shape comes from the environment so one script serves every scenario:
--   WRK_METHOD   HTTP method (default GET)
--   WRK_BODY     request body (default none)
--   WRK_HEADERS  extra headers, one "Name: value" per line
-- done() prints one machine-readable line (latencies in microseconds):
--   WRK_RESULT requests=N duration_us=N rps=F mean_us=F p50_us=N p90_us=N p99_us=N
--              p999_us=N max_us=N err_connect=N err_read=N err_write=N err_status=N err_timeout=N

local method = os.getenv("WRK_METHOD")
if method ~= nil and method ~= "" then
   wrk.method = method
end

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
   wrk.body = body
   if wrk.headers["Content-Type"] == nil then
      wrk.headers["Content-Type"] = "application/json"
   end
end

local headers = os.getenv("WRK_HEADERS")
if headers ~= nil then
   for line in headers:gmatch("[^\n]+") do
      local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
      if name ~= nil then
         wrk.headers[name] = value
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d rps=%.1f mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
      "p999_us=%d max_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.duration, summary.requests / secs, latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
