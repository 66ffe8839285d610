-- harness.lua: run a FreeSWITCH hangup-hook script under a plain Lua interpreter, the way mod_lua runs it.
--
-- Why: FreeSWITCH has no Debian package, so the hook is proved here against stand-ins for exactly the API it uses,
-- with mod_lua's signatures (src/switch_cpp.h, mod_lua.cpp, SWIG's argument checks):
--   session:getVariable(name) -> string or nil         (CoreSession::getVariable(char *var))
--   session:setVariable(name, value)                   (CoreSession::setVariable(char *var, char *val); nil unsets)
--   freeswitch.consoleLog(level, message)              (consoleLog(char *level_str, char *msg))
--   freeswitch.API():execute(command [, data])         (API::execute(const char *cmd, const char *data = NULL))
--   argv = {[0] = script, arg1, arg2, ...}            (lua_parse_and_execute splits the arguments on spaces)
-- and a stand-in for mod_curl's `curl` API (url [headers|json|content-type T|connect-timeout S|timeout S]
-- [get|head|post [data]], post data URL-decoded once by switch_url_decode, answer = body or "").
-- Anything else the script touches is missing, as a typo would be in FreeSWITCH.
--
-- Usage: lua5.1 harness.lua MODE VARS_FILE SCRIPT [ARG ...]
--   MODE: socket (luasocket visible), curl (luasocket hidden: the script must use mod_curl), nosession
--   VARS_FILE: one "name=value" per line, value percent-encoded (any byte, CR/LF included)
-- Output, one record per line, fields split by TAB, text percent-encoded:
--   set NAME VALUE | log LEVEL MESSAGE | api COMMAND DATA | error MESSAGE | done

local mode, vars_file, script = arg[1], arg[2], arg[3]
if not (mode and vars_file and script) then
  io.stderr:write("usage: harness.lua socket|curl|nosession VARS_FILE SCRIPT [ARG ...]\n")
  os.exit(2)
end

local function encode(s)
  return (string.gsub(s, "([^%w%-%._~ ])", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function decode(s)
  return (string.gsub(s, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function emit(...)
  local fields = { ... }
  for i = 2, #fields do fields[i] = encode(fields[i]) end
  io.stdout:write(table.concat(fields, "\t"), "\n")
  io.stdout:flush()
end

-- SWIG's checks: argument count, then `char *` arguments accept strings, numbers (lua_isstring) and nil.
local function check_args(fname, min, max, ...)
  local n = select("#", ...)
  if n < min or n > max then
    error(string.format("Error in %s expected %d..%d args, got %d", fname, min, max, n), 3)
  end
  for i = 1, n do
    local t = type((select(i, ...)))
    if t ~= "string" and t ~= "number" and t ~= "nil" then
      error(string.format("Error in %s (arg %d), expected 'char *' got '%s'", fname, i + 1, t), 3)
    end
  end
end

local function as_c_string(v)
  if v == nil then return nil end
  return tostring(v)
end

-- The channel's variables.
local variables = {}
local fh = assert(io.open(vars_file, "rb"))
for line in fh:lines() do
  local name, value = string.match(line, "^([^=]+)=(.*)$")
  if name then variables[name] = decode(value) end
end
fh:close()

-- luasocket for the mod_curl stand-in; the script only sees it in "socket" mode.
local have_socket, socket = pcall(require, "socket")

-- CoreSession: methods must be called with ':' (SWIG checks arg 1 is the CoreSession).
local Session = {}
Session.__index = Session
local session_obj = setmetatable({ __self = true }, Session)

local function check_self(fname, self)
  if self ~= session_obj then
    error(string.format("Error in %s (arg 1), expected 'CoreSession *' got '%s'", fname, type(self)), 3)
  end
end

function Session.getVariable(self, ...)
  check_self("CoreSession::getVariable", self)
  check_args("CoreSession::getVariable", 1, 1, ...)
  local name = as_c_string((...))
  if name == nil then return nil end
  return variables[name]
end

function Session.setVariable(self, ...)
  check_self("CoreSession::setVariable", self)
  check_args("CoreSession::setVariable", 2, 2, ...)
  local name, value = ...
  name, value = as_c_string(name), as_c_string(value)
  if name == nil or name == "" then return end
  variables[name] = value
  emit("set", name, value or "")
end

-- mod_curl's `curl` API over luasocket.
local function url_decode_once(s)  -- switch_url_decode: %XX only, '+' stays
  return (string.gsub(s, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function mod_curl(data)
  local argv = {}
  for word in string.gmatch(data or "", "[^ ]+") do argv[#argv + 1] = word end
  if #argv < 1 then return "-ERR\n" end
  local url, method, postdata, content_type = argv[1], "get", nil, nil
  local connect_timeout, timeout = nil, nil
  local i = 2
  while i <= #argv do
    local w = string.lower(argv[i])
    if w == "get" or w == "head" then method = w
    elseif w == "post" then
      method = "post"
      i = i + 1
      postdata = argv[i] and url_decode_once(argv[i]) or ""
    elseif w == "content-type" then i = i + 1 content_type = argv[i]
    elseif w == "connect-timeout" then i = i + 1 connect_timeout = tonumber(argv[i])
    elseif w == "timeout" then i = i + 1 timeout = tonumber(argv[i])
    end
    i = i + 1
  end
  local host, port, path = string.match(url, "^http://([^:/]+):?(%d*)(/.*)$")
  if not host or not have_socket then return "" end
  local deadline = socket.gettime() + (timeout or 300)
  local function left() return math.max(0, deadline - socket.gettime()) end
  local conn = socket.tcp()
  conn:settimeout(math.min(connect_timeout or 300, left()), "t")
  if not conn:connect(host, tonumber(port) or 80) then conn:close() return "" end
  local head = string.upper(method) .. " " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n" ..
               "User-Agent: freeswitch-curl/1.0\r\nAccept: */*\r\n"
  if method == "post" then
    if content_type then head = head .. "Content-Type: " .. content_type .. "\r\n" end
    head = head .. "Content-Length: " .. #postdata .. "\r\n"
  end
  conn:settimeout(left(), "t")
  conn:send(head .. "\r\n" .. (postdata or ""))
  conn:settimeout(left(), "t")
  local raw, _, partial = conn:receive("*a")
  conn:close()
  raw = raw or partial or ""
  local sep = string.find(raw, "\r\n\r\n", 1, true)
  local body = sep and string.sub(raw, sep + 4) or ""
  if body == " " then body = "" end
  return body
end

local API = {}
API.__index = API

function API.execute(self, ...)
  if getmetatable(self) ~= API then error("Error in API::execute (arg 1), expected 'API *'", 2) end
  check_args("API::execute", 1, 2, ...)
  local command, data = ...
  command, data = as_c_string(command), as_c_string(data)
  emit("api", command or "", data or "")
  if command == "curl" then return mod_curl(data) end
  return "-ERR " .. tostring(command) .. " Command not found!\n"
end

freeswitch = {
  consoleLog = function(...)
    check_args("consoleLog", 2, 2, ...)
    local level, message = ...
    emit("log", as_c_string(level) or "", as_c_string(message) or "")
  end,
  API = function() return setmetatable({}, API) end,
}

if mode ~= "nosession" then session = session_obj end

-- mod_lua's lua_init: exiting is refused.
os.exit = function() freeswitch.consoleLog("err", "Surely you jest! exiting is a bad plan....\n") end

-- argv as lua_parse_and_execute builds it.
argv = { [0] = string.match(script, "[^/]+$") }
for i = 4, #arg do argv[#argv + 1] = arg[i] end

if mode == "curl" then
  package.loaded["socket"] = nil
  package.loaded["socket.core"] = nil
  local real_require = require
  require = function(name)
    if name == "socket" or name == "socket.core" then error("module '" .. name .. "' not found", 2) end
    return real_require(name)
  end
end

local chunk, load_err = loadfile(script)
if not chunk then
  emit("error", tostring(load_err))
else
  local ok, err = xpcall(chunk, debug.traceback)
  if not ok then emit("error", tostring(err)) end
end
emit("done")
