#!/usr/bin/env bash
# HTTP API load benchmark on Fashion-MNIST (60,000 x 784, exact L2 search):
#   1. starts `m3vdb serve` on a fresh database (port 0),
#   2. ingests the 60,000 training vectors through POST /documents in batches of 1,000, once as
#      JSON numbers and once as dense_b64 (two collections), and reports vectors/s,
#   3. runs wrk with dense search bodies (the first 1,000 test images, top_k 10) at 1, 8 and 32
#      connections: requests/s, p50/p99 latency, errors,
#   4. stops the server (SIGTERM) and runs the same searches through the embedded library from
#      1, 8 and 32 threads (http_bench library), and the same ingest through Upsert,
#   5. prints a markdown table with HTTP/library ratios.
# Usage: bench/http_load.sh [BUILD_DIR]     env: DURATION (s per run, default 10),
#        CONNECTIONS (default "1 8 32"), SERVER_FLAGS (extra `m3vdb serve` flags, e.g.
#        "--search-runners 1" or "--max-search-batch 1" to turn search coalescing off)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-1 8 32}"
for tool in wrk curl; do command -v $tool >/dev/null || { echo "http_load: $tool is missing (scripts/install-deps.sh)"; exit 1; }; done
[ -x "$build/m3vdb" ] && [ -x "$build/bench/http_bench" ] || { echo "http_load: build m3vdb and http_bench in $build first"; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck disable=SC2086
"$build/m3vdb" serve --data-dir "$work/db" --port 0 ${SERVER_FLAGS:-} > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on http" "$work/serve.log" && break; sleep 0.1; done
port="$(grep -o 'm3vdb listening on http://[^ ]*' "$work/serve.log" | grep -o '[0-9]*$')"
url="http://127.0.0.1:$port"
echo "server: $url ($(grep -o '([0-9]* I/O threads.*)' "$work/serve.log"))"

for c in fm fm_json; do
  curl -sf -X PUT "$url/collections/$c" -H 'Content-Type: application/json' -d '{"dense_dim":784,"metric":"l2"}' >/dev/null
done
ingest_json="$("$build/bench/http_bench" ingest --port "$port" --collection fm_json --format json | grep RESULT)"
ingest_b64="$("$build/bench/http_bench" ingest --port "$port" --collection fm --format b64 | grep RESULT)"
curl -sf -X DELETE "$url/collections/fm_json" >/dev/null
curl -sf -X PUT "$url/collections/fm_4" -H 'Content-Type: application/json' -d '{"dense_dim":784,"metric":"l2"}' >/dev/null
ingest_b64_4="$("$build/bench/http_bench" ingest --port "$port" --collection fm_4 --format b64 --clients 4 | grep RESULT)"
curl -sf -X DELETE "$url/collections/fm_4" >/dev/null
echo "$ingest_json"; echo "$ingest_b64"; echo "$ingest_b64_4"
"$build/bench/http_bench" queries --out "$work/queries.jsonl"

declare -A http batch
for c in $connections; do
  threads=$(( c < 2 ? c : 2 ))   # wrk threads share the machine with the server
  curl -sf -X POST "$url/collections/fm/search" -H 'Content-Type: application/json' -d "$(head -1 "$work/queries.jsonl")" >/dev/null
  calls0="$(curl -sf "$url/metrics" | sed -n 's/^m3vdb_dense_search_engine_calls_total //p')"
  searches0="$(curl -sf "$url/metrics" | sed -n 's/^m3vdb_dense_searches_total //p')"
  http[$c]="$(wrk -t "$threads" -c "$c" -d "${duration}s" --timeout 10s -s bench/http_search.lua "$url" -- "$work/queries.jsonl" fm | grep RESULT)"
  calls1="$(curl -sf "$url/metrics" | sed -n 's/^m3vdb_dense_search_engine_calls_total //p')"
  searches1="$(curl -sf "$url/metrics" | sed -n 's/^m3vdb_dense_searches_total //p')"
  batch[$c]="$(awk -v s=$((searches1 - searches0)) -v c=$((calls1 - calls0)) 'BEGIN { printf "%.1f", c ? s / c : 0 }')"
  echo "wrk -c $c: ${http[$c]} mean_batch=${batch[$c]}"
done

kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""
declare -A lib
for c in $connections; do
  lib[$c]="$("$build/bench/http_bench" library --db "$work/db" --collection fm --threads "$c" --seconds "$duration" | grep RESULT)"
  echo "library $c threads: ${lib[$c]}"
done

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< "$1"; }
echo
echo "| load | HTTP req/s | HTTP p50 ms | HTTP p99 ms | HTTP errors | mean batch | library req/s | library p50 ms | library p99 ms | HTTP/library |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in $connections; do
  h="${http[$c]}"; l="${lib[$c]}"
  ratio="$(awk -v a="$(field "$h" rps)" -v b="$(field "$l" rps)" 'BEGIN { printf "%.2f", a / b }')"
  echo "| search, $c conn/threads | $(field "$h" rps) | $(field "$h" p50_ms) | $(field "$h" p99_ms) | $(field "$h" errors) | ${batch[$c]} | $(field "$l" rps) | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $ratio |"
done
lib_ingest="$(field "${lib[$(echo $connections | cut -d' ' -f1)]}" ingest_vectors_per_s)"
echo
echo "| ingest, batches of 1000 | vectors/s | MiB per request |"
echo "|---|---|---|"
echo "| HTTP, JSON numbers | $(field "$ingest_json" vectors_per_s) | $(field "$ingest_json" mib_per_batch) |"
echo "| HTTP, dense_b64 | $(field "$ingest_b64" vectors_per_s) | $(field "$ingest_b64" mib_per_batch) |"
echo "| HTTP, dense_b64, 4 clients | $(field "$ingest_b64_4" vectors_per_s) | $(field "$ingest_b64_4" mib_per_batch) |"
echo "| library Upsert | $lib_ingest | |"
