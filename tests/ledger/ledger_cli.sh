#!/usr/bin/env bash
# parallax ledger summary|divergences over a fixture ledger: output, filters, exit codes,
# and filter values that look like SQL staying literals (RELIABILITY D7).
# usage: ledger_cli.sh PARALLAX MAKE_FIXTURE
set -u
px=$1
make_fixture=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/ledger/ledger.db
fail=0
checks=0

check() { # description, then a command that must succeed
    local what=$1
    shift
    checks=$((checks + 1))
    if ! "$@"; then
        echo "FAIL: $what" >&2
        fail=1
    fi
}

run() { # expected exit code, then parallax arguments; output in $out / $err
    local want=$1
    shift
    "$px" "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    out=$(cat "$dir/out")
    err=$(cat "$dir/err")
    if [ "$got" != "$want" ]; then
        echo "FAIL: parallax $* exited $got, expected $want; stderr: $err" >&2
        fail=1
    fi
    checks=$((checks + 1))
}

"$make_fixture" "$db" || { echo "FAIL: fixture" >&2; exit 1; }

run 0 ledger summary --db "$db"
check "total" grep -q '^messages: 10$' <<<"$out"
check "feed count" grep -Eq '^  lab +6$' <<<"$out"
check "type count" grep -Eq '^  ADT\^A01 +4$' <<<"$out"
check "ack none" grep -Eq '^  \(none\) +4$' <<<"$out"
check "ack AE" grep -Eq '^  AE +1$' <<<"$out"
check "leg state" grep -Eq '^  legacy/delivered +10$' <<<"$out"
check "divergence kind" grep -Eq '^  outcome_mismatch +2$' <<<"$out"

run 0 ledger summary --db "$db" --since 2026-11-26 --feed adt
check "since + feed" grep -q '^messages: 4$' <<<"$out"
run 0 ledger summary --db "$db" --until 2026-11-25T00:00:02Z
check "until" grep -q '^messages: 2$' <<<"$out"
run 0 ledger summary --db "$db" --since 1795564801000 --until 2026-11-25T01:00:03+01:00
check "unix ms and offset" grep -q '^messages: 2$' <<<"$out"
run 2 ledger summary --db "$db" --since 1795564801000 --until 2026-11-25T01:00:00+01:00
check "empty range refused" grep -q 'later than --since' <<<"$err"

# Bad values name the flag and exit 2.
run 2 ledger summary --db "$db" --since yesterday
check "--since named" grep -q -- '--since' <<<"$err"
run 2 ledger summary --db "$db" --since "2024'; DROP TABLE messages;--"
check "injection in --since refused" grep -q -- '--since' <<<"$err"
run 2 ledger summary --db "$db" --until 2026-02-30
check "--until named" grep -q -- '--until' <<<"$err"
run 2 ledger divergences --db "$db" --kind "x' OR '1'='1"
check "--kind named" grep -q -- '--kind' <<<"$err"
run 2 ledger divergences --db "$db" --limit 0
run 2 ledger summary --db "$db" --type ORU
check "divergence-only flag" grep -q 'only for divergences' <<<"$err"
run 2 ledger summary
run 2 ledger summary --db "$db" -c "$dir/x.json"
run 2 ledger frobnicate
run 3 ledger summary --db "$dir/missing.db"
check "missing db named" grep -q 'missing.db' <<<"$err"

# Filters are literals: wildcards and SQL match nothing and change nothing.
for evil in "%" "_" "*" "x' OR '1'='1" "lab'; DROP TABLE messages;--" '" OR ""="'; do
    run 0 ledger summary --db "$db" --feed "$evil"
    check "feed literal: $evil" grep -q '^messages: 0$' <<<"$out"
    run 0 ledger divergences --db "$db" --type "$evil"
    check "type literal: $evil" grep -q 'no divergences match' <<<"$out"
    run 0 ledger divergences --db "$db" --sender "$evil"
    check "sender literal: $evil" grep -q 'no divergences match' <<<"$out"
done
run 0 ledger summary --db "$db"
check "rows unchanged" grep -q '^messages: 10$' <<<"$out"
check "divergences unchanged" grep -Eq '^  conversion_gap +1$' <<<"$out"

run 0 ledger divergences --db "$db"
check "table header" grep -q '^ID  *MESSAGE' <<<"$out"
check "three rows" test "$(grep -c 'OBX-5' <<<"$out")" = 3
check "no escape bytes reach the terminal" test "$(grep -c $'\x1b' <<<"$out")" = 0
run 0 ledger divergences --db "$db" --kind conversion_gap --sender REG^HOSP --type ADT^A01
check "filters combine" test "$(grep -c 'conversion_gap' <<<"$out")" = 1
run 0 ledger divergences --db "$db" --json --limit 2
if command -v python3 >/dev/null; then
    check "json parses with 2 items" python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert len(d) == 2, d
assert d[0]["kind"] == "outcome_mismatch", d[0]
assert d[0]["detail"]["note"] == "caf\u00e9", d[0]
assert d[0]["control_id"] == "CTRL\u001b[31m", d[0]
assert d[0]["resolution"] is None
assert d[0]["received_at"] == "2026-11-25T00:00:00.000Z", d[0]
' <<<"$out"
fi
run 0 ledger divergences --db "$db" --json --kind duplicate
check "empty json array" test "$out" = $'[\n]'

# The ledger path can come from the configuration.
cat >"$dir/config.json" <<JSON
{
  "instance": "px-test",
  "ledger": {"path": "$db"},
  "upstreams": [{"name": "ehr", "host": "127.0.0.1", "port": 2575}],
  "feeds": [{"name": "lab", "listen": "127.0.0.1", "port": 6661, "upstream": "ehr"}]
}
JSON
chmod 600 "$dir/config.json"
run 0 ledger summary -c "$dir/config.json" --feed lab
check "-c CONFIG" grep -q '^messages: 6$' <<<"$out"
run 3 ledger summary -c "$dir/none.json"

if [ $fail -ne 0 ]; then
    exit 1
fi
echo "ledger cli: $checks checks passed"
