#!/usr/bin/env bash
# Measures the figures in BENCHMARKS.md. usage: bench/run.sh sqlite|postgres [patients] [observations]
#   patients × (observations + 1) resources are stored first (default 10,000 × 100 = 1,000,000).
# Needs wrk (apt-get install wrk). Data goes to bench-data/ (git-ignored) and is reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-sqlite}
PATIENTS=${2:-10000}
OBS=${3:-99}
DURATION=${DURATION:-20s}
PORT=${PORT:-8089}
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
export IDS_OBS="$PWD/bench-data/observations.txt"
PORTICO_DATABASE_URL="$URL" PORTICO_HTTP_ADDR="127.0.0.1:$PORT" PORTICO_PUBLIC_URL="http://127.0.0.1:$PORT" PORTICO_LOG=warn \
  "$BIN/portico" serve >bench-data/serve.log 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true; [ -n "${CEIL:-}" ] && kill $CEIL 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
CLIENT=$(PORTICO_DATABASE_URL="$URL" "$BIN/portico" admin create-client --name bench --scopes "system/*.read system/*.write" --json)
ID=$(printf '%s' "$CLIENT" | python3 -c 'import sys,json;print(json.load(sys.stdin)["client_id"])')
SECRET=$(printf '%s' "$CLIENT" | python3 -c 'import sys,json;print(json.load(sys.stdin)["client_secret"])')
export TOKEN=$(curl -fs -X POST "http://127.0.0.1:$PORT/oauth/token" -d grant_type=client_credentials -d "client_id=$ID" --data-urlencode "client_secret=$SECRET" \
  | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
STORED=$(curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Observation?_summary=count" | python3 -c 'import sys,json;print(json.load(sys.stdin)["total"])')
echo "== $DB: $STORED Observations stored (plus $PATIENTS Patients); wrk 1 thread, 16 connections, $DURATION each; $(nproc) cores"
echo "-- read by id: GET /fhir/Observation/{id}"
IDS="$IDS_OBS" wrk -t1 -c16 -d"$DURATION" -s bench/read.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
echo "-- search: GET /fhir/Observation?patient=…&code=…&date=ge2020-01-01"
IDS="$PWD/bench-data/patients.txt" wrk -t1 -c16 -d"$DURATION" -s bench/search.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
echo "-- create: POST /fhir/Observation (Prefer: return=minimal)"
wrk -t1 -c16 -d"$DURATION" -s bench/create.lua "http://127.0.0.1:$PORT" | grep -E '^(requests|latency|errors)'
kill $SRV; wait $SRV 2>/dev/null || true
if [ "$DB" = sqlite ]; then
  echo "-- ceiling: bare axum handler, same JSON by primary key from the same SQLite file"
  "$BIN/portico-bench" ceiling --sqlite "${URL#sqlite://}" --addr "127.0.0.1:$((PORT+1))" 2>/dev/null &
  CEIL=$!
  sleep 1
  IDS="$IDS_OBS" PREFIX=/Observation/ wrk -t1 -c16 -d"$DURATION" -s bench/read.lua "http://127.0.0.1:$((PORT+1))" | grep -E '^(requests|latency|errors)'
fi
