-- wrk script for bench/peers/run.py: bench/rotate.lua (loaded as it is: the same path
-- rotation, counter, BENCH_SALT and JSON summary in done()), plus one thing for the peers
-- whose URLs cannot take rotate.lua's "&bg=RRGGBB" at the end of the path. In cold runs
-- (BENCH_UNIQUE=1) a path may hold a token, and the unique value goes there instead:
--   {hex}  the six hex digits rotate.lua would have appended (ipx: b_{hex}, a background colour
--          that cover-crops of opaque sources never use)
--   {num}  the same value as a decimal number >= 1 (thumbor: filters:max_age({num}), which
--          only sets the Cache-Control header of that response)
-- A path without a token (Loupe) keeps rotate.lua's "&bg=RRGGBB" suffix, as serve_bench.py.
-- ROTATE_LUA: the path of bench/rotate.lua. Run with one wrk thread (-t1): the counter is
-- per thread.

dofile(os.getenv("ROTATE_LUA"))

local rotate_request = request

request = function()
  local req = rotate_request()
  if not (req:find("{hex}", 1, true) or req:find("{num}", 1, true)) then
    return req
  end
  local method, path, hex, rest = req:match("^(%S+ )(%S-)&bg=(%x+)( .*)$")
  if not path then
    return req -- warm run: no suffix, the paths of warm runs hold no token
  end
  path = path:gsub("{hex}", hex):gsub("{num}", tostring(tonumber(hex, 16) + 1))
  return method .. path .. rest
end
