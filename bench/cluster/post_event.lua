-- wrk script for bench/cluster/run.sh: POST /api/event with a Plausible
-- pageview body (text/plain JSON, as the official tracker sends it), 500
-- varying pages, and a client address in X-Forwarded-For varying over 65,536
-- visitors (the balancer appends its own hop; the workers trust the balancer
-- and, in this loopback setup, the client too, so each address is a visitor).
local n = 0
local refs = { "https://www.google.com/", "https://news.ycombinator.com/",
               "https://duckduckgo.com/", "" }
wrk.method = "POST"
wrk.path = "/api/event"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 " ..
  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

setup = function(thread)
  thread:set("seed", math.random(0, 1000000))
end

request = function()
  n = n + 1
  local v = (n * 7919 + (seed or 0)) % 65536
  local ref = refs[n % #refs + 1]
  local body = '{"n":"pageview","u":"https://bench.example/blog/post-' .. (n % 500) ..
    '","d":"bench.example","r":' ..
    (ref == "" and "null" or ('"' .. ref .. '"')) .. ',"w":1440}'
  -- wrk.format's headers replace wrk.headers: copy them.
  local headers = {}
  for k, val in pairs(wrk.headers) do headers[k] = val end
  headers["X-Forwarded-For"] = "10." .. (math.floor(v / 256) % 256) .. "." .. (v % 256) .. ".7"
  return wrk.format(nil, nil, headers, body)
end
