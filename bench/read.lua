-- GET /fhir/Observation/{id} for ids from bench-data/observations.txt (portico-bench fill).
-- env: TOKEN (bearer token), PREFIX (path before the id, default /fhir/Observation/), IDS.
local ids = {}
for line in io.lines(os.getenv("IDS") or "bench-data/observations.txt") do ids[#ids + 1] = line end
local prefix = os.getenv("PREFIX") or "/fhir/Observation/"
local token = os.getenv("TOKEN")
local n = 0
request = function()
  n = n + 1
  local headers = {}
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", prefix .. ids[(n * 7919) % #ids + 1], headers)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
