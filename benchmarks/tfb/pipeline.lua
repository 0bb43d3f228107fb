-- TechEmpower's pipelined plaintext: each connection sends `depth` requests at once
-- (wrk counts each response; TFB runs plaintext with a depth of 16).
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
