-- pbx_codes_hook.lua: annotate this leg's CDR with why it failed, before the CDR is written.
--
-- Runs as the channel's api_hangup_hook with session_in_hangup_hook=true, in the channel's own thread, so the
-- `session` object is this (hanging-up) channel: session:setVariable works where uuid_setvar answers
-- "-ERR No such channel!". It POSTs the channel's cause variables to pbx-codes on loopback and copies the pbx_*
-- lines of the answer into channel variables. Everything is bounded by a ~1 s timeout: a stopped pbx-codes only
-- delays teardown, never blocks it, and the CDR is written without pbx_* fields.
--
-- Arguments: [host] [port]   (default 127.0.0.1 8089)

if not session then return end

local host = (argv and argv[1]) or "127.0.0.1"
local port = tonumber((argv and argv[2]) or "8089") or 8089
local TIMEOUT = 1.0

-- Keep in sync with pbx_codes.observers.freeswitch.HOOK_VARIABLES (the endpoint ignores any other name).
local VARS = {
  "uuid", "call_uuid", "signal_bond", "originator", "channel_name", "direction", "destination_number",
  "hangup_cause", "hangup_cause_q850", "sip_term_status", "sip_term_cause", "sip_invite_failure_status",
  "sip_invite_failure_phrase", "sip_hangup_phrase", "sip_reason", "proto_specific_hangup_cause",
  "last_bridge_proto_specific_hangup_cause", "last_bridge_hangup_cause", "originate_failed_cause",
  "sip_hangup_disposition", "sip_gateway_name", "sofia_profile_name", "pbx_codes_catalog", "pbx_codes_trunk",
  "DIALSTATUS", "end_epoch",
}

local function urlencode(s)
  return (string.gsub(s, "([^%w%-%._~])", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local parts = {}
for _, name in ipairs(VARS) do
  local value = session:getVariable(name)
  if value and value ~= "" then parts[#parts + 1] = name .. "=" .. urlencode(value) end
end
local body = table.concat(parts, "&")

local answer = nil
local have_socket, socket = pcall(require, "socket")
if have_socket and socket then
  -- luasocket: one HTTP/1.1 request, every step under the same timeout.
  local conn = socket.tcp()
  conn:settimeout(TIMEOUT)
  if conn:connect(host, port) then
    conn:send("POST /annotate HTTP/1.1\r\nHost: " .. host .. "\r\n" ..
              "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " .. #body .. "\r\n" ..
              "Connection: close\r\n\r\n" .. body)
    local data, _, partial = conn:receive("*a")
    data = data or partial
    if data and string.match(data, "^HTTP/1%.[01] 200") then
      local sep = string.find(data, "\r\n\r\n", 1, true)
      if sep then answer = string.sub(data, sep + 4) end
    end
  end
  conn:close()
else
  -- mod_curl's API (load mod_curl): body only; the form is URL-encoded, so it has no spaces to split on.
  local api = freeswitch.API()
  answer = api:execute("curl", "http://" .. host .. ":" .. port .. "/annotate connect-timeout 1 timeout 1 " ..
                       "content-type application/x-www-form-urlencoded post " .. body)
end

if not answer or answer == "" then return end
for line in string.gmatch(answer, "[^\n]+") do
  local name, value = string.match(line, "^(pbx_[%w_]+)=(.*)$")
  if name then session:setVariable(name, value) end
end
