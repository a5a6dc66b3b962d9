-- wrk script: POST /api/event with a realistic Plausible pageview body (as
-- the official tracker sends it: text/plain JSON), URLs varying over 500
-- pages, a desktop browser User-Agent (an empty one is dropped as a bot).
local n = 0
local refs = { "https://www.google.com/", "https://news.ycombinator.com/",
               "https://duckduckgo.com/", "" }
wrk.method = "POST"
wrk.path = "/api/event"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 " ..
  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

request = function()
  n = n + 1
  local ref = refs[n % #refs + 1]
  local body = '{"n":"pageview","u":"https://bench.test/blog/post-' .. (n % 500) ..
    '?utm_source=newsletter","d":"bench.test","r":' ..
    (ref == "" and "null" or ('"' .. ref .. '"')) .. ',"w":1440}'
  return wrk.format(nil, nil, nil, body)
end
