-- pbx_codes_hook.lua: annotate this leg's CDR with why it failed, before the CDR is written.
--
-- Runs as the channel's api_hangup_hook with session_in_hangup_hook=true, in the channel's own thread, so the
-- `session` object is this (hanging-up) channel: session:setVariable works where uuid_setvar answers
-- "-ERR No such channel!". It POSTs the channel's cause variables to pbx-codes on loopback and copies the pbx_*
-- lines of the answer into channel variables. The whole exchange has one deadline (TIMEOUT): a stopped or stuck
-- pbx-codes only delays teardown by at most that long, logs a warning, and the CDR is written without pbx_* fields.
-- Nothing here may raise: any error is logged and the hangup goes on.
--
-- Arguments: [host] [port]   (default 127.0.0.1 8089)
-- Supported Lua: 5.1, 5.2, 5.3 and 5.4, and LuaJIT (5.1 language) -- whichever mod_lua was built with (FreeSWITCH's
-- configure prefers LuaJIT, then 5.3). Tested under Debian's lua5.1, lua5.2, lua5.3 and lua5.4 with lua-socket.
-- HTTP through luasocket when the runtime has it (Debian: lua-socket, built for each Lua), else mod_curl's `curl` API.

local HOST = (argv and argv[1]) or "127.0.0.1"
local PORT = tonumber((argv and argv[2]) or "8089") or 8089
local TIMEOUT = 1.0        -- seconds for connect + send + receive together
local MAX_VALUE = 512      -- bytes of one channel variable sent to the endpoint
local MAX_ANSWER = 8192    -- bytes; pbx-codes answers nine short lines

-- Keep in sync with pbx_codes.observers.freeswitch.HOOK_VARIABLES (the endpoint ignores any other name).
local VARS = {
  "uuid", "call_uuid", "signal_bond", "originator", "channel_name", "direction", "destination_number",
  "hangup_cause", "hangup_cause_q850", "sip_term_status", "sip_term_cause", "sip_invite_failure_status",
  "sip_invite_failure_phrase", "sip_hangup_phrase", "sip_reason", "proto_specific_hangup_cause",
  "last_bridge_proto_specific_hangup_cause", "last_bridge_hangup_cause", "originate_failed_cause",
  "sip_hangup_disposition", "sip_gateway_name", "sofia_profile_name", "pbx_codes_catalog", "pbx_codes_trunk",
  "DIALSTATUS", "end_epoch", "originate_disposition", "sip_reply_port", "sip_network_ip", "current_application",
  "current_application_data", "start_uepoch", "progress_uepoch", "progress_media_uepoch", "answer_uepoch",
  "end_uepoch",
}

-- The only variables this script sets (pbx_codes.writeback.freeswitch_hook.PBX_VARIABLES).
local SETTABLE = {
  pbx_catalog = true, pbx_code = true, pbx_phrase = true, pbx_category = true, pbx_retry = true,
  pbx_reason = true, pbx_q850 = true, pbx_exact = true, pbx_hangup_by = true,
}

local function log(level, text)
  freeswitch.consoleLog(level, "pbx_codes_hook: " .. text .. "\n")
end

local function urlencode(s)
  return (string.gsub(s, "([^%w%-%._~])", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function channel_form()
  local parts = {}
  for _, name in ipairs(VARS) do
    local value = session:getVariable(name)
    -- A carrier can send a phrase of any length; 512 bytes is more than any reason needs and keeps the form far
    -- below the endpoint's size limit (a cut inside a UTF-8 character is repaired by the endpoint's decoder).
    if value and #value > MAX_VALUE then value = string.sub(value, 1, MAX_VALUE) end
    if value and value ~= "" then parts[#parts + 1] = name .. "=" .. urlencode(value) end
  end
  return table.concat(parts, "&")
end

-- luasocket: one HTTP/1.1 request; every step gets what is left of the one deadline ("t" = total per call).
-- Returns the answer body ("" for 204), or nil and why.
local function post_with_socket(socket, body)
  local deadline = socket.gettime() + TIMEOUT
  local function left()
    local t = deadline - socket.gettime()
    if t < 0 then return 0 end
    return t
  end
  local conn = socket.tcp()
  conn:settimeout(left(), "t")
  local ok, err = conn:connect(HOST, PORT)
  if not ok then conn:close() return nil, "connect: " .. tostring(err) end
  conn:settimeout(left(), "t")
  ok, err = conn:send("POST /annotate HTTP/1.1\r\nHost: " .. HOST .. ":" .. PORT .. "\r\n" ..
                      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " .. #body .. "\r\n" ..
                      "Connection: close\r\n\r\n" .. body)
  if not ok then conn:close() return nil, "send: " .. tostring(err) end
  local chunks, size = {}, 0
  while true do
    conn:settimeout(left(), "t")
    local data, rerr, partial = conn:receive(1024)
    local got = data or partial
    if got and #got > 0 then chunks[#chunks + 1] = got size = size + #got end
    if size > MAX_ANSWER then conn:close() return nil, "answer longer than " .. MAX_ANSWER .. " bytes" end
    if not data then
      if rerr ~= "closed" then conn:close() return nil, "receive: " .. tostring(rerr) end
      break
    end
  end
  conn:close()
  local raw = table.concat(chunks)
  local status = string.match(raw, "^HTTP/1%.[01] (%d%d%d)")
  if status == "204" then return "" end
  if status ~= "200" then return nil, "answer " .. tostring(status or "not HTTP") end
  local sep = string.find(raw, "\r\n\r\n", 1, true)
  if not sep then return nil, "answer without a body" end
  return string.sub(raw, sep + 4)
end

-- mod_curl (load mod_curl): it URL-decodes the post data once, so the already encoded form is encoded again to
-- arrive intact (a phrase with "&" or "=" must not become a field). Its answer is the body only: a failure and a
-- 204 both read as "".
local function post_with_curl(body)
  local api = freeswitch.API()
  local answer = api:execute("curl", "http://" .. HOST .. ":" .. PORT .. "/annotate connect-timeout 1 timeout 1 " ..
                             "content-type application/x-www-form-urlencoded post " .. urlencode(body))
  return answer or ""
end

local function safe_value(value)
  return #value <= 1024 and not string.find(value, '[%c"\\]') and not string.find(value, "${", 1, true)
end

local function main()
  if not session then
    log("WARNING", "no session: set session_in_hangup_hook=true before api_hangup_hook")
    return
  end
  local body = channel_form()
  local answer, why
  local have_socket, socket = pcall(require, "socket")
  if have_socket and type(socket) == "table" and socket.tcp and socket.gettime then
    answer, why = post_with_socket(socket, body)
  else
    answer = post_with_curl(body)
  end
  if answer == nil then
    log("WARNING", "no annotation from pbx-codes at " .. HOST .. ":" .. PORT .. " (" .. why ..
                   "); the CDR is written without pbx_* fields")
    return
  end
  for line in string.gmatch(answer, "[^\n]+") do
    local name, value = string.match(line, "^(pbx_[%w_]+)=(.-)\r?$")
    if name and SETTABLE[name] and safe_value(value) then session:setVariable(name, value) end
  end
end

local ok, err = pcall(main)
if not ok then log("WARNING", "hook failed: " .. tostring(err)) end
