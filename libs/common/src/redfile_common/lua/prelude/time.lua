-- Redis's clock, read once at the top of a script: now (unix seconds) and now_us (unix microseconds).
--! exports: now now_us
local t = redis.call('TIME')
local now = tonumber(t[1])
local now_us = now * 1000000 + tonumber(t[2])
