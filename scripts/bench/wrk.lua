-- wrk script for scripts/bench.sh.
--
--   wrk -t2 -c32 -d10s -s scripts/bench/wrk.lua http://127.0.0.1:8080 -- PATH [CREDENTIALS]
--
-- PATH may contain {id}, replaced in each request by the id of a seeded user. CREDENTIALS is a file
-- of "token user_id" lines (scripts/bench/seed.sql): each request then carries
-- "Authorization: Bearer <token>" of the next seeded user, so the load spreads over many sessions
-- instead of hammering one. done() prints a single machine-readable line for bench.sh.

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

local template, credentials, count, cursor

function init(args)
   template = args[1] or "/"
   credentials = {}
   if args[2] and args[2] ~= "" and args[2] ~= "-" then
      for line in io.lines(args[2]) do
         local token, uid = line:match("^(%x+)%s+(%d+)")
         if token then credentials[#credentials + 1] = { token = token, id = uid } end
      end
   end
   count = #credentials
   -- Threads start at different users.
   cursor = (thread_index or 0) * 7919
end

function request()
   if count == 0 then
      return wrk.format("GET", template)
   end
   cursor = cursor + 1
   local me = credentials[(cursor % count) + 1]
   local other = credentials[((cursor * 31 + 17) % count) + 1]
   local path = template:gsub("{id}", other.id)
   return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. me.token })
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d seconds=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f socket_errors=%d http_errors=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
