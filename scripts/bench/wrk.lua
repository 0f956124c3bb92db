-- wrk script of scripts/bench.sh; scripts/bench/runner.sh builds its arguments from a scenario:
--
--   wrk … -s wrk.lua URL -- mode=MODE method=METHOD path=PATH creds=FILE [values=FILE]
--                           [time=LO-HI] [run=ID]
--
-- mode=get (the default): METHOD PATH, rotating over the "token user_id" lines of creds, each
--   request with "Authorization: Bearer <token>" of the next line (creds=- or none: no header),
--   threads starting at different lines. Placeholders in PATH, replaced in each request:
--     {id}    the user id of another line of creds;
--     {q}     the next line of the file values (UTF-8 texts, percent-encoded here);
--     {time}  an integer uniformly random in [LO, HI + 1] (time=LO-HI).
-- mode=sendmsg: POST PATH (/chat/sendMsg), a 1:1 text message as a form body. creds has
--   "token user_id" lines, lines 2i+1 and 2i+2 being friends; the requests rotate over the pairs
--   and both directions. Every request has its own clientMsgId: run (unique per wrk run: a
--   warm-up and the measured run must not share ids, or the second would only find the first's
--   messages), the thread and a counter.
--
-- Every response is read: a request counts as failed when its status is not 2xx or its body is not
-- a success envelope ("code":1). WRK_CHECK_BODIES=0 in the environment leaves response() undefined:
-- wrk then hands no body to Lua and counts only socket errors and statuses >= 400 (http_errors).
-- The runner uses it for the measured runs of the endpoints whose answers are 150-190 KB (ready,
-- getGroupMember: every body of their warm-up runs is checked instead; copying each body into Lua
-- took about a quarter of the two cores the server shares with wrk, which measured wrk, not the
-- server), and for both runs of the basic part's endpoints (nginx's own answer is no envelope).
--
-- done() prints one line for the runner:
--   BENCH checked=… requests=… seconds=… rps=… ok_rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=…
--         socket_errors=… http_errors=… non2xx=… bad_bodies=…
-- (checked is 1 when every body was read; http_errors is wrk's count of statuses >= 400; non2xx is
-- ours, of any status outside 200-299; bad_bodies counts 2xx answers without "code":1; ok_rps
-- counts the requests that were neither, or, unchecked, the requests without a status >= 400.)

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

local mode, method, template, cursor
local credentials, ncred = {}, 0
local queries, nqueries = {}, 0
local tmin, tmax
local has_id, has_q, has_time
local run_id, counter = "", 0
non2xx, bad = 0, 0

local function read_credentials(path)
   local list = {}
   for line in io.lines(path) do
      local t, uid = line:match("^(%x+)%s+(%d+)")
      if t then list[#list + 1] = { token = t, id = uid } end
   end
   return list
end

local function urlencode(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- The body of every text message (percent-encoded once).
local content = urlencode("你好，这是一条基准测试消息。Hello from the benchmark!")

function init(args)
   local opt = {}
   for _, arg in ipairs(args) do
      local k, v = arg:match("^([%w_]+)=(.*)$")
      if not k then error("wrk.lua: not a key=value argument: " .. arg) end
      opt[k] = v
   end
   mode = opt.mode or "get"
   method = opt.method or "GET"
   template = opt.path or "/"
   cursor = (thread_index or 0) * 7919
   math.randomseed(os.time() + (thread_index or 0) * 1013)
   if opt.creds and opt.creds ~= "" and opt.creds ~= "-" then credentials = read_credentials(opt.creds) end
   ncred = #credentials
   if mode == "get" then
      has_id = template:find("{id}", 1, true) ~= nil
      has_q = template:find("{q}", 1, true) ~= nil
      has_time = template:find("{time}", 1, true) ~= nil
      if has_q then
         for line in io.lines(opt.values) do
            if line ~= "" then queries[#queries + 1] = urlencode(line) end
         end
         nqueries = #queries
      end
      if has_time then
         local lo, hi = (opt.time or ""):match("^(%d+)%-(%d+)$")
         if not lo then error("wrk.lua: {time} needs time=LO-HI") end
         tmin, tmax = tonumber(lo), tonumber(hi)
      end
   elseif mode == "sendmsg" then
      run_id = opt.run or tostring(os.time())
   else
      error("wrk.lua: unknown mode " .. tostring(mode))
   end
end

function request()
   cursor = cursor + 1
   if mode == "sendmsg" then
      local npairs = math.floor(ncred / 2)
      local pair = cursor % npairs
      local flip = math.floor(cursor / npairs) % 2
      local from = credentials[2 * pair + 1 + flip]
      local to = credentials[2 * pair + 2 - flip]
      counter = counter + 1
      local body = string.format("destId=%s&destType=1&msgType=1&content=%s&clientMsgId=b%s-%d-%d",
         to.id, content, run_id, thread_index or 0, counter)
      return wrk.format("POST", template, {
         ["Authorization"] = "Bearer " .. from.token,
         ["Content-Type"] = "application/x-www-form-urlencoded",
      }, body)
   end
   local path, headers = template, nil
   if ncred > 0 then
      local me = credentials[(cursor % ncred) + 1]
      headers = { ["Authorization"] = "Bearer " .. me.token }
      if has_id then
         local other = credentials[((cursor * 31 + 17) % ncred) + 1]
         path = path:gsub("{id}", other.id)
      end
   end
   if has_q then
      local q = queries[(cursor % nqueries) + 1]
      path = path:gsub("{q}", function() return q end)
   end
   if has_time then
      local t = tmin + math.floor(math.random() * (tmax - tmin + 2))
      path = path:gsub("{time}", string.format("%.0f", t))
   end
   return wrk.format(method, path, headers)
end

local check_bodies = os.getenv("WRK_CHECK_BODIES") ~= "0"

if check_bodies then
   function response(status, headers, body)
      if status < 200 or status > 299 then
         non2xx = non2xx + 1
      elseif not (body:find('"code":1,', 1, true) or body:find('"code":1}', 1, true)) then
         bad = bad + 1
      end
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local n2, b = 0, 0
   for _, thread in ipairs(threads) do
      n2 = n2 + (thread:get("non2xx") or 0)
      b = b + (thread:get("bad") or 0)
   end
   io.write(string.format(
      "BENCH checked=%d requests=%d seconds=%.2f rps=%.1f ok_rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f socket_errors=%d http_errors=%d non2xx=%d bad_bodies=%d\n",
      check_bodies and 1 or 0, summary.requests, seconds, summary.requests / seconds,
      -- Unchecked, a request failed when wrk saw a status >= 400 (checked, those are in non2xx).
      (summary.requests - (check_bodies and (n2 + b) or e.status)) / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, e.connect + e.read + e.write + e.timeout, e.status, n2, b))
end
