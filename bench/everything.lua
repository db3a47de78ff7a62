-- GET /fhir/Patient/{id}/$everything (the whole record, one streamed Bundle) for the patients
-- of bench-data/record-patients.txt (portico-bench record: ~1,000 resources each).
-- env: TOKEN (bearer token), IDS.
local ids = {}
for line in io.lines(os.getenv("IDS") or "bench-data/record-patients.txt") do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/fhir/Patient/" .. ids[n % #ids + 1] .. "/$everything", {["Authorization"] = "Bearer " .. token})
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
