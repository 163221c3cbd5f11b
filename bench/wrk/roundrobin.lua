-- wrk script for bench/run: round-robin over many clients, each request with
-- valid Basic credentials and a scope. One request per client is built once in
-- init(); request() only hands the next one out. No response() callback (it
-- slows wrk): bench/run reads non-2xx counts from wrk's own summary.
--
-- Environment:
--   BENCH_PATH          token endpoint path (default /oauth2/token)
--   BENCH_CLIENT_PREFIX client id prefix (default "bench-")
--   BENCH_CLIENT_FIRST  first client number (default 1)
--   BENCH_CLIENT_COUNT  how many clients, numbered consecutively (default 10)
--   BENCH_SECRET        the secret every bench client has
--   BENCH_SCOPE         requested scope (default "transaction")

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local threads = 0
function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

local requests = {}
local n = 0
local i = 0

function init(args)
  local path = os.getenv("BENCH_PATH") or "/oauth2/token"
  local prefix = os.getenv("BENCH_CLIENT_PREFIX") or "bench-"
  local first = tonumber(os.getenv("BENCH_CLIENT_FIRST") or "1")
  local count = tonumber(os.getenv("BENCH_CLIENT_COUNT") or "10")
  local secret = os.getenv("BENCH_SECRET") or error("BENCH_SECRET is not set")
  local scope = os.getenv("BENCH_SCOPE") or "transaction"
  local body = "grant_type=client_credentials&scope=" .. scope:gsub(" ", "+")
  for k = 0, count - 1 do
    local id = prefix .. tostring(first + k)
    requests[k + 1] = wrk.format("POST", path, {
      ["Authorization"] = "Basic " .. base64(id .. ":" .. secret),
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Accept"] = "application/json",
    }, body)
  end
  n = count
  -- Threads start at different points of the cycle.
  i = ((thread_index or 0) * math.floor(count / 2)) % count
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return requests[i]
end
