#!/usr/bin/env bash
# `make demo`'s Choir step: `choir up` serves a fresh data dir for a few seconds while the
# command line builds a small community on it (two users, a thread, a post, a spec approved by
# a vote); the server folds each transaction and writes its content store; then the thread as
# the API shows it, the wallets and the supply invariant, a stop by PID and `choir check`.
# Needs only the base install: the SQLite ledger and the qdrant-edge store are embedded;
# without the `text` extra the embeddings are the lexical fallback, and the server says so.
# Usage: scripts/demo-choir.sh BIN_DIR DATA_DIR
set -euo pipefail
BIN=$1
DATA=$2
choir() { "$BIN/becomingone" choir "$@" --data-dir "$DATA"; }
quiet() { choir "$@" 2>"$DATA/cli.err" || { cat "$DATA/cli.err" >&2; return 1; }; }
field() { "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
rm -rf "$DATA"
mkdir -p "$DATA"

"$BIN/becomingone" choir up --no-demo --serve 127.0.0.1:0 --data-dir "$DATA" \
    >"$DATA/up.out" 2>"$DATA/up.err" &
UP=$!
trap 'kill -INT $UP 2>/dev/null || true' EXIT
for _ in $(seq 600); do  # at most 60 s to start
    grep -q '^ui: ' "$DATA/up.out" 2>/dev/null && break
    kill -0 $UP 2>/dev/null || { cat "$DATA/up.err"; exit 1; }
    sleep 0.1
done
URL=$(sed -n 's|^ui: \(.*\)/choir/$|\1|p' "$DATA/up.out")
[ -n "$URL" ] || { echo "choir up did not start in 60 s"; cat "$DATA/up.err"; exit 1; }
echo "choir up (pid $UP): $URL/choir/; the commands below write the ledger, the server the rest"
for name in ada bob; do
    choir users add $name --json | field name >/dev/null  # (it prints an API token)
done
THREAD=$(quiet threads create "Tides" --as ada --json | field thread)
echo "thread=$THREAD  title=Tides  creator=ada"
choir post "$THREAD" "Tides follow the moon: two highs and two lows a day." --as ada
SPEC=$(quiet submit "$THREAD" "Spring tides come when the sun and the moon pull in line." \
    --as bob --json | field spec)
echo "spec=$SPEC  author=bob  stake=50  status=pending"
quiet vote "$SPEC" approve --as ada
"$BIN/python" - "$URL" "$THREAD" <<'PY'
import json, sys, time, urllib.request
url, thread = sys.argv[1], sys.argv[2]
for _ in range(100):  # the server folds each shell write within its 0.2 s poll
    with urllib.request.urlopen(f"{url}/api/v1/choir/threads/{thread}", timeout=10) as answer:
        detail = json.load(answer)
    if [m["status"] for m in detail["messages"]] == ["published", "published"]:
        break
    time.sleep(0.2)
with urllib.request.urlopen(f"{url}/api/v1/choir/search?q=why+is+the+sea+high&k=1") as answer:
    [prior] = json.load(answer)
print(f"GET /api/v1/choir/threads/{thread}: balance={detail['balance']} price={detail['price']}")
for m in detail["messages"]:
    print(f"  {m['status']:<9} {m['author_name']:<4} {m['text']}")
print(f"GET /api/v1/choir/search?q=why is the sea high: {prior['score']}  {prior['text']}")
PY
choir users
choir balance
kill -INT $UP
wait $UP
trap - EXIT
grep -v "stop with Ctrl-C" "$DATA/up.err" || true
choir check
