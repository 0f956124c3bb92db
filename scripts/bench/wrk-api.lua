-- wrk script for the social-graph and messaging parts of scripts/bench.sh. Like wrk.lua, but it
-- also reads every response: a request counts as failed when its status is not 2xx or its body is
-- not a success envelope ("code":1). One mode per run:
--
--   wrk … -s wrk-api.lua URL -- get PATH CREDENTIALS
--       GET PATH, rotating over the "token user_id" lines of CREDENTIALS (as wrk.lua; {id} in PATH
--       becomes another seeded user's id).
--   wrk … -s wrk-api.lua URL -- querygroup CREDENTIALS QUERIES
--       GET /chat/queryGroup?groupName=Q, Q rotating over the lines of the file QUERIES (UTF-8,
--       percent-encoded here), the sessions rotating over CREDENTIALS.
--   wrk … -s wrk-api.lua URL -- history TOKEN DEST_ID TMIN TMAX SIZE
--       GET /chat/getMsgHistory?destId=DEST_ID&destType=1&sendTime=T&size=SIZE, T uniformly random
--       in [TMIN, TMAX + 1] (ms).
--   wrk … -s wrk-api.lua URL -- sendmsg PAIRS RUN_ID
--       POST /chat/sendMsg (form body), a 1:1 text message. PAIRS has "token user_id" lines, lines
--       2i+1 and 2i+2 being friends; the requests rotate over the pairs and both directions. Every
--       request has its own clientMsgId: RUN_ID (unique per wrk run: a warm-up and the measured run
--       must not share ids, or the second would only find the first's messages), the thread and a
--       counter.
--
-- WRK_CHECK_BODIES=0 in the environment leaves response() undefined: wrk then hands no body to Lua
-- and counts only socket errors and statuses >= 400 (http_errors). bench.sh uses it for the
-- measured runs of the endpoints whose answers are 150-190 KB (ready, getGroupMember), and checks
-- every body of their warm-up runs instead: copying each body into Lua took about a quarter of
-- the two cores the server shares with wrk, which measured wrk, not the server.
--
-- done() prints one line for bench.sh:
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

local mode, cursor
local credentials, ncred = {}, 0
local queries, nqueries = {}, 0
local token, dest_id, tmin, tmax, size, template
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
   mode = args[1] or "get"
   cursor = (thread_index or 0) * 7919
   math.randomseed(os.time() + (thread_index or 0) * 1013)
   if mode == "get" then
      template = args[2] or "/"
      if args[3] and args[3] ~= "-" then credentials = read_credentials(args[3]) end
   elseif mode == "querygroup" then
      credentials = read_credentials(args[2])
      for line in io.lines(args[3]) do
         if line ~= "" then queries[#queries + 1] = urlencode(line) end
      end
      nqueries = #queries
   elseif mode == "history" then
      token, dest_id, tmin, tmax, size = args[2], args[3], tonumber(args[4]), tonumber(args[5]), args[6] or "20"
   elseif mode == "sendmsg" then
      credentials = read_credentials(args[2])
      run_id = args[3] or tostring(os.time())
   else
      error("wrk-api.lua: unknown mode " .. tostring(mode))
   end
   ncred = #credentials
end

function request()
   cursor = cursor + 1
   if mode == "get" then
      if ncred == 0 then return wrk.format("GET", template) end
      local me = credentials[(cursor % ncred) + 1]
      local other = credentials[((cursor * 31 + 17) % ncred) + 1]
      return wrk.format("GET", (template:gsub("{id}", other.id)), { ["Authorization"] = "Bearer " .. me.token })
   elseif mode == "querygroup" then
      local me = credentials[(cursor % ncred) + 1]
      local q = queries[(cursor % nqueries) + 1]
      return wrk.format("GET", "/chat/queryGroup?groupName=" .. q, { ["Authorization"] = "Bearer " .. me.token })
   elseif mode == "history" then
      local t = tmin + math.floor(math.random() * (tmax - tmin + 2))
      return wrk.format("GET", string.format("/chat/getMsgHistory?destId=%s&destType=1&sendTime=%.0f&size=%s",
         dest_id, t, size), { ["Authorization"] = "Bearer " .. token })
   else -- sendmsg
      local npairs = math.floor(ncred / 2)
      local pair = cursor % npairs
      local flip = math.floor(cursor / npairs) % 2
      local from = credentials[2 * pair + 1 + flip]
      local to = credentials[2 * pair + 2 - flip]
      counter = counter + 1
      local body = string.format("destId=%s&destType=1&msgType=1&content=%s&clientMsgId=b%s-%d-%d",
         to.id, content, run_id, thread_index or 0, counter)
      return wrk.format("POST", "/chat/sendMsg", {
         ["Authorization"] = "Bearer " .. from.token,
         ["Content-Type"] = "application/x-www-form-urlencoded",
      }, body)
   end
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
