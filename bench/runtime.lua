-- bench/runtime.lua — wrk script of bench/runtime.sh: bench/report.lua (the WRK_RESULT line) plus
-- one varied request per call for the runtime issue's workloads, chosen by $BENCH_WORKLOAD:
--   w0  GET  /health/live                                  (no token)
--   w1  GET  /api/v1/products?category=<one of 7>&page=<1..10>&limit=20   (no token)
--   w2  GET  /api/v1/users/me                              a random user's token per request
--   w3  POST /api/v1/me/cart {"product_id":<random of the seed>,"quantity":1}   a random user's token
-- Tokens and product ids come from $BENCH_SEED_DIR/tokens and products.ids (bench/runtime_seed.py),
-- so W2/W3 spread over 1,000 users instead of one user's hot rows.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "report.lua")

local categories = {"sut-urunleri", "bakliyat", "et-urunleri", "salca-ve-ezmeler", "unlu-mamuller",
                    "zeytinler", "diger-urunler"}
local workload = os.getenv("BENCH_WORKLOAD") or "w0"
local tokens, ids = {}, {}

local function lines(path, into)
   local f = io.open(path, "r")
   if not f then return end
   for line in f:lines() do
      if #line > 0 then into[#into + 1] = line end
   end
   f:close()
end

function init(args)
   math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
   local dir = os.getenv("BENCH_SEED_DIR") or "."
   lines(dir .. "/tokens", tokens)
   lines(dir .. "/products.ids", ids)
   if (workload == "w2" or workload == "w3") and #tokens == 0 then error("no tokens in " .. dir) end
   if workload == "w3" and #ids == 0 then error("no product ids in " .. dir) end
end

function request()
   if workload == "w1" then
      return wrk.format("GET", "/api/v1/products?category=" .. categories[math.random(#categories)] ..
                        "&page=" .. math.random(10) .. "&limit=20")
   elseif workload == "w2" then
      wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
      return wrk.format("GET", "/api/v1/users/me")
   elseif workload == "w3" then
      wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
      wrk.headers["Content-Type"] = "application/json"
      return wrk.format("POST", "/api/v1/me/cart", nil,
                        '{"product_id":"' .. ids[math.random(#ids)] .. '","quantity":1}')
   end
   return wrk.format("GET", "/health/live")
end
