#!/bin/sh
# bench/list100k.sh — a 100,000-row resource list with and without skip_total (issue 5).
# Loads 100k products straight into a fresh SQLite database (INSERT ... WITH RECURSIVE; the FTS
# triggers run as for any insert), then wrk against GET /api/v1/products?limit=20[&skip_total=true].
#   bench/list100k.sh            (BENCH_SECONDS=5, BENCH_CONNS=64)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${TEMEL_BIN:-$here/../build/temel}
secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-64}
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORT=$port HOST=127.0.0.1 DATABASE_URL="sqlite://$dir/temel.db" TEMEL_DATA_DIR="$dir" \
    TEMEL_RATE_LIMIT_READ=1000000000/1 TEMEL_JOB_THREADS=0
"$bin" migrate up >/dev/null
sqlite3 "$dir/temel.db" <<'SQL'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO catalog_products (id, category, sku, name, description, price, currency, stock, created_at, updated_at)
SELECT printf('01900000-0000-7000-8000-%012d', i),
       CASE i % 7 WHEN 0 THEN 'sut-urunleri' WHEN 1 THEN 'bakliyat' WHEN 2 THEN 'et-urunleri'
                  WHEN 3 THEN 'salca-ve-ezmeler' WHEN 4 THEN 'unlu-mamuller' WHEN 5 THEN 'zeytinler'
                  ELSE 'diger-urunler' END,
       'B' || i,
       json_object('tr', 'Ürün ' || i, 'en', 'Product ' || i, 'pl', 'Produkt ' || i),
       json_object('tr', 'açıklama', 'en', 'description', 'pl', 'opis'),
       100 + i % 5000, 'TRY', i % 50, 1735689600000 + i, 1735689600000 + i
FROM n;
ANALYZE;
SQL
"$bin" serve 2>"$dir/temel.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
echo "rows: $(sqlite3 "$dir/temel.db" 'SELECT count(*) FROM catalog_products')"
for q in "limit=20" "limit=20&skip_total=true" "limit=20&page=2000" "limit=20&page=2000&skip_total=true"; do
    wrk -t2 -c"$conns" -d"${secs}s" -s "$here/report.lua" "http://127.0.0.1:$port/api/v1/products?$q" 2>&1 |
        awk -v q="$q" '/Requests\/sec/ {rps=$2} /WRK_RESULT/ {line=$0} END {printf "%-38s %10s req/s  %s\n", q, rps, line}'
done
