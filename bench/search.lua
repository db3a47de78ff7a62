-- First page of Observation?patient=…&code=…&date=ge… for patients from bench-data/patients.txt.
local ids = {}
for line in io.lines(os.getenv("IDS") or "bench-data/patients.txt") do ids[#ids + 1] = line end
local codes = {"8867-4", "8480-6", "8462-4", "29463-7", "4548-4", "2339-0", "8310-5", "9279-1"}
local token = os.getenv("TOKEN")
local n = 0
request = function()
  n = n + 1
  local p = ids[(n * 7919) % #ids + 1]
  local c = codes[n % #codes + 1]
  local path = "/fhir/Observation?patient=Patient/" .. p .. "&code=http://loinc.org|" .. c .. "&date=ge2020-01-01"
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
