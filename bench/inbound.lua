-- wrk script of bench/inbound.py: replays pre-signed requests, each at most once.
--
--   wrk -t2 -c16 -d20s --latency -s bench/inbound.lua http://127.0.0.1:PORT -- FILE PATH THREADS
--
-- FILE has one request per line: "<Authorization header>\t<JSON body>". Thread k of THREADS
-- takes lines k, k+THREADS, k+2*THREADS, ... (disjoint slices), formats them all in init()
-- so request() only hands out a prepared string, and wraps around only if it runs out
-- (counted: for the inbound endpoint a repeated request is a duplicate, not a new completion).
-- response() counts statuses; done() prints one "BENCH key=value ..." line for bench/inbound.py.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   table.insert(threads, thread)
   next_id = next_id + 1
end

function init(args)
   local file, path, nthreads = args[1], args[2], tonumber(args[3])
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == tid then
         local tab = line:find("\t", 1, true)
         local headers = {
            ["Authorization"] = line:sub(1, tab - 1),
            ["Content-Type"] = "application/json",
         }
         reqs[#reqs + 1] = wrk.format("POST", path, headers, line:sub(tab + 1))
      end
      i = i + 1
   end
   available = #reqs
   used = 0
   wrapped = 0
   statuses = {}
end

function request()
   used = used + 1
   local n = used % available
   if n == 0 then
      n = available
   end
   if used > available then
      wrapped = wrapped + 1
   end
   return reqs[n]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local used_total, available_total, wrapped_total = 0, 0, 0
   local counts = {}
   for _, thread in ipairs(threads) do
      used_total = used_total + thread:get("used")
      available_total = available_total + thread:get("available")
      wrapped_total = wrapped_total + thread:get("wrapped")
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {
      "requests=" .. summary.requests,
      "duration_us=" .. summary.duration,
      "p50_us=" .. latency:percentile(50.0),
      "p90_us=" .. latency:percentile(90.0),
      "p99_us=" .. latency:percentile(99.0),
      "max_us=" .. latency.max,
      "mean_us=" .. latency.mean,
      "err_connect=" .. summary.errors.connect,
      "err_read=" .. summary.errors.read,
      "err_write=" .. summary.errors.write,
      "err_status=" .. summary.errors.status,
      "err_timeout=" .. summary.errors.timeout,
      "used=" .. used_total,
      "available=" .. available_total,
      "wrapped=" .. wrapped_total,
   }
   for status, n in pairs(counts) do
      parts[#parts + 1] = "status_" .. status .. "=" .. n
   end
   io.write("BENCH " .. table.concat(parts, " ") .. "\n")
end
