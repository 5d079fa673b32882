-- bench/catalog.lua — bench/report.lua plus varied requests for the catalog workloads
-- (used through WRK_BIN=bench/wrk-catalog.sh; bench/catalog_setup.py writes the product ids):
--   W1 GET /api/v1/products?...  a random seeded category and a random page 1..50 per request
--   W3 POST /api/v1/me/cart      a random product of the instance per request, quantity 1, so the
--                                lines grow (add-or-increase) without reaching the 99 cap
--   PP GET /api/v1/products/{id} anonymous (no Authorization), one of the first $BENCH_HOT_PRODUCTS
--                                (default 100) products per request: hot public reads
-- Product ids come from $BENCH_CATALOG_DIR/<port>.ids (one per line); without the file (the nginx
-- reference) a made-up id of the same shape is used.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "report.lua")

local categories = {"sut-urunleri", "bakliyat", "et-urunleri", "salca-ve-ezmeler", "unlu-mamuller",
                    "zeytinler", "diger-urunler"}
local ids = {}
local hot = tonumber(os.getenv("BENCH_HOT_PRODUCTS") or "100")
local anonymous = {}

function init(args)
   math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
   local dir = os.getenv("BENCH_CATALOG_DIR") or "/tmp/temel-bench-catalog"
   local f = io.open(dir .. "/" .. tostring(wrk.port) .. ".ids", "r")
   if f then
      for line in f:lines() do
         if #line > 0 then ids[#ids + 1] = line end
      end
      f:close()
   end
   if #ids == 0 then ids[1] = "01900000-0000-7000-8000-000000000000" end
   if hot > #ids then hot = #ids end
   for k, v in pairs(wrk.headers) do
      if k:lower() ~= "authorization" then anonymous[k] = v end
   end
end

local path = wrk.path:match("^[^?]*")

function request()
   if wrk.method == "POST" and path == "/api/v1/me/cart" then
      local body = '{"product_id":"' .. ids[math.random(#ids)] .. '","quantity":1}'
      return wrk.format(nil, nil, nil, body)
   elseif path:match("^/api/v1/products/") then
      return wrk.format(nil, "/api/v1/products/" .. ids[math.random(hot)], anonymous)
   elseif path == "/api/v1/products" then
      local p = path .. "?category=" .. categories[math.random(#categories)] .. "&page=" ..
         math.random(50) .. "&limit=20"
      return wrk.format(nil, p)
   end
   return wrk.format()
end
