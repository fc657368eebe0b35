-- wrk script of benchmarks/mcp_bench.py: one POST, every answer checked, optionally a fresh token per request.
--
-- wrk ... -s mcp.lua URL -- HEADERS_FILE BODY_FILE TOKENS_FILE|- OFFSET EXPECTED...
--   HEADERS_FILE  "Name: value" lines (no Content-Length: wrk.format adds it)
--   BODY_FILE     the request body
--   TOKENS_FILE   "-" for the Authorization header of HEADERS_FILE; else one token a line, and request
--                 number n (counted from 1 in each wrk thread) sends token OFFSET + n: a token no earlier
--                 request used, so it is cold in every cache (past the end it wraps and counts "exhausted")
--   EXPECTED      substrings every answer's body must contain; its status must be 200
-- done() prints "BENCHCHECK ok=.. bad=.. sent=.. exhausted=.." and one "BENCHSAMPLE" of a bad answer.

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  headers = {}
  for line in io.lines(args[1]) do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name] = value end
  end
  local file = assert(io.open(args[2], "rb"))
  body = file:read("*a")
  file:close()
  offset = tonumber(args[4]) or 0
  if args[3] ~= "-" then
    tokens = {}
    for line in io.lines(args[3]) do tokens[#tokens + 1] = line end
  else
    static_request = wrk.format("POST", wrk.path, headers, body)
  end
  expected = {}
  for i = 5, #args do expected[#expected + 1] = args[i] end
  ok, bad, sent, exhausted, sample = 0, 0, 0, 0, ""
end

function request()
  sent = sent + 1
  if static_request then return static_request end
  local index = offset + sent
  if index > #tokens then
    exhausted = exhausted + 1
    index = (index - 1) % #tokens + 1
  end
  headers["Authorization"] = "Bearer " .. tokens[index]
  return wrk.format("POST", wrk.path, headers, body)
end

function response(status, _, answer)
  local good = status == 200
  for _, substring in ipairs(expected) do
    if good and not string.find(answer or "", substring, 1, true) then good = false end
  end
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(answer or "", 1, 300) end
  end
end

function done()
  local totals = {ok = 0, bad = 0, sent = 0, exhausted = 0}
  local first = ""
  for _, thread in ipairs(threads) do
    for name in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
    if first == "" then first = thread:get("sample") end
  end
  io.write(string.format("BENCHCHECK ok=%d bad=%d sent=%d exhausted=%d\n",
    totals.ok, totals.bad, totals.sent, totals.exhausted))
  io.write("BENCHSAMPLE " .. first:gsub("[\r\n]", " ") .. "\n")
end
