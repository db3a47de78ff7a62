#!/usr/bin/env bash
# Measures the figures in BENCHMARKS.md. usage: bench/run.sh sqlite|postgres [patients] [observations]
#   patients × (observations + 1) resources are stored first (default 10,000 × 100 = 1,000,000).
#   SCENARIOS picks what runs (default "read search create ceiling"); also:
#     everything  GET /fhir/Patient/{id}/$everything for 20 added patients of ~1,000 resources each
#                 (RECORDS, RECORD_SIZE), 16 connections
#     export      a system-level Bulk Data export of the whole store on a freshly started server:
#                 kick-off to complete, resources/s, and the server's RSS before and at its peak
# Needs wrk (apt-get install wrk). Data goes to bench-data/ (git-ignored) and is reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-sqlite}
PATIENTS=${2:-10000}
OBS=${3:-99}
DURATION=${DURATION:-20s}
PORT=${PORT:-8089}
SCENARIOS=${SCENARIOS:-read search create ceiling}
RECORDS=${RECORDS:-20}
RECORD_SIZE=${RECORD_SIZE:-1000}
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
export BENCH_DIR="$PWD/bench"
mkdir -p bench-data
cargo build --release -q -p portico -p portico-bench
BIN=target/release
case "$DB" in
  sqlite) URL="sqlite://$PWD/bench-data/bench-$PATIENTS-$OBS.db" ;;
  postgres)
    NAME="portico_bench_${PATIENTS}_$OBS"
    URL="${PORTICO_BENCH_POSTGRES_BASE:-postgres://postgres@127.0.0.1:5432}/$NAME"
    psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$NAME'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $NAME" ;;
  *) echo "usage: $0 sqlite|postgres [patients] [observations]"; exit 2 ;;
esac
MARK="bench-data/filled-$DB-$PATIENTS-$OBS"
if [ ! -f "$MARK" ]; then
  echo "== fill: $PATIENTS patients × $OBS observations"
  "$BIN/portico-bench" fill --database-url "$URL" --patients "$PATIENTS" --observations "$OBS" --out bench-data
  touch "$MARK"
fi
RECORD_MARK="bench-data/records-$DB-$PATIENTS-$OBS"
if has everything && [ ! -f "$RECORD_MARK" ]; then
  echo "== record: $RECORDS patients × $RECORD_SIZE resources (for \$everything)"
  "$BIN/portico-bench" record --database-url "$URL" --patients "$RECORDS" --resources "$RECORD_SIZE" --out bench-data
  touch "$RECORD_MARK"
fi
export IDS_OBS="$PWD/bench-data/observations.txt"
start_server() {
  PORTICO_DATABASE_URL="$URL" PORTICO_HTTP_ADDR="127.0.0.1:$PORT" PORTICO_PUBLIC_URL="http://127.0.0.1:$PORT" PORTICO_LOG=warn \
    "$BIN/portico" serve >>bench-data/serve.log 2>&1 &
  SRV=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
}
start_server
trap 'kill $SRV 2>/dev/null || true; [ -n "${CEIL:-}" ] && kill $CEIL 2>/dev/null || true' EXIT
CLIENT=$(PORTICO_DATABASE_URL="$URL" "$BIN/portico" admin create-client --name bench --scopes "system/*.read system/*.write" --json)
ID=$(printf '%s' "$CLIENT" | python3 -c 'import sys,json;print(json.load(sys.stdin)["client_id"])')
SECRET=$(printf '%s' "$CLIENT" | python3 -c 'import sys,json;print(json.load(sys.stdin)["client_secret"])')
export TOKEN=$(curl -fs -X POST "http://127.0.0.1:$PORT/oauth/token" -d grant_type=client_credentials -d "client_id=$ID" --data-urlencode "client_secret=$SECRET" \
  | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
STORED=$(curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Observation?_summary=count" | python3 -c 'import sys,json;print(json.load(sys.stdin)["total"])')
echo "== $DB: $STORED Observations stored (plus $PATIENTS Patients); wrk 1 thread, 16 connections, $DURATION each; $(nproc) cores"
if has read; then
  echo "-- read by id: GET /fhir/Observation/{id}"
  IDS="$IDS_OBS" wrk -t1 -c16 -d"$DURATION" -s bench/read.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
fi
if has search; then
  echo "-- search: GET /fhir/Observation?patient=…&code=…&date=ge2020-01-01"
  IDS="$PWD/bench-data/patients.txt" wrk -t1 -c16 -d"$DURATION" -s bench/search.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
fi
if has create; then
  echo "-- create: POST /fhir/Observation (Prefer: return=minimal)"
  wrk -t1 -c16 -d"$DURATION" -s bench/create.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
fi
if has everything; then
  FIRST=$(head -1 bench-data/record-patients.txt)
  SIZE=$(curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Patient/$FIRST/\$everything" \
    | python3 -c 'import sys,json;b=json.load(sys.stdin);print(len(b.get("entry",[])), "entries,", len(json.dumps(b)), "bytes")')
  echo "-- everything: GET /fhir/Patient/{id}/\$everything, $RECORDS patients ($SIZE each)"
  # The server's own CPU time per request, which other load on the machine changes less than
  # latency (utime + stime in clock ticks, fields 14 and 15 of /proc/PID/stat).
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$SRV/stat"; }
  C0=$(cpu_ticks)
  IDS="$PWD/bench-data/record-patients.txt" wrk -t1 -c16 -d"$DURATION" -s bench/everything.lua "http://127.0.0.1:$PORT" | tee bench-data/wrk.out | grep -E '^(requests|latency|errors)'
  C1=$(cpu_ticks)
  python3 -c 'import sys,os; t=(int(sys.argv[2])-int(sys.argv[1]))/os.sysconf("SC_CLK_TCK"); rps=float(sys.argv[3]); d=float(sys.argv[4]); print(f"server CPU {t:.1f} s in {d:.0f} s: {1000*t/(rps*d):.2f} ms per request")' \
    "$C0" "$C1" "$(awk '/^requests\/s/ {print $2}' bench-data/wrk.out)" "${DURATION%s}"
fi
if has export; then
  # A fresh server, so that its peak RSS is the export's.
  kill $SRV; wait $SRV 2>/dev/null || true
  start_server
  rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SRV/status"; }
  BEFORE=$(rss VmRSS)
  T0=$(date +%s.%N)
  STATUS=$(curl -fs -D - -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Prefer: respond-async' -H 'Accept: application/fhir+json' \
    "http://127.0.0.1:$PORT/fhir/\$export" | tr -d '\r' | awk 'tolower($1) == "content-location:" {print $2}')
  # VmHWM counts the database pages SQLite reads through mmap (file-backed, given back under
  # memory pressure); RssAnon is the server's own memory, sampled while the export runs.
  ANON=0
  while :; do
    A=$(rss RssAnon); [ "${A:-0}" -gt "$ANON" ] && ANON=$A
    CODE=$(curl -s -o bench-data/manifest.json -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$STATUS")
    [ "$CODE" = 202 ] || break
    sleep 0.1
  done
  T1=$(date +%s.%N)
  [ "$CODE" = 200 ] || { echo "export failed: $CODE $(cat bench-data/manifest.json)"; exit 1; }
  python3 - "$T0" "$T1" "$BEFORE" "$(rss VmHWM)" "$(rss VmRSS)" "$ANON" <<'PY'
import json, sys
t0, t1, before, peak, after, anon = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
m = json.load(open("bench-data/manifest.json"))
n = sum(o["count"] for o in m["output"])
print(f"-- export: GET /fhir/$export, kick-off to complete: {n} resources in {len(m['output'])} files, {t1 - t0:.1f} s, {n / (t1 - t0):.0f} resources/s")
print(f"server RSS: {before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB (VmHWM, with mapped database pages), {after / 1024:.0f} MiB after; anonymous memory peak {anon / 1024:.0f} MiB (sampled every 0.1 s)")
PY
  JOB=${STATUS##*/}
  du -sh "bench-data/portico-export/$JOB" "${TMPDIR:-/tmp}/portico-export/$JOB" 2>/dev/null | sed 's/^/files: /' || true
  curl -fs -o /dev/null -X DELETE -H "Authorization: Bearer $TOKEN" "$STATUS"
fi
kill $SRV; wait $SRV 2>/dev/null || true
if [ "$DB" = sqlite ] && has ceiling; then
  echo "-- ceiling: bare axum handler, same JSON by primary key from the same SQLite file"
  "$BIN/portico-bench" ceiling --sqlite "${URL#sqlite://}" --addr "127.0.0.1:$((PORT+1))" 2>/dev/null &
  CEIL=$!
  sleep 1
  IDS="$IDS_OBS" PREFIX=/Observation/ wrk -t1 -c16 -d"$DURATION" -s bench/read.lua "http://127.0.0.1:$((PORT+1))" | grep -E '^(requests|latency|errors)'
fi
