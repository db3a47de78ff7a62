-- POST /fhir/Observation: durable single-resource creates.
local token = os.getenv("TOKEN")
local n = 0
request = function()
  n = n + 1
  local body = '{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/new' .. (n % 1000) .. '"},"effectiveDateTime":"2026-11-30T10:00:00Z","valueQuantity":{"value":' .. (60 + n % 40) .. ',"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}'
  return wrk.format("POST", "/fhir/Observation", {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/fhir+json", ["Prefer"] = "return=minimal"}, body)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
