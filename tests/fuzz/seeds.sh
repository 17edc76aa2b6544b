#!/usr/bin/env bash
# Builds the fuzz seed folders from the sample corpus and the unit-test fixtures:
#   tests/fuzz/seeds.sh OUT_DIR
# creates OUT_DIR/fuzz_hl7_parse (the files as they are), OUT_DIR/fuzz_hl7_escape (each file
# behind the 7-byte delimiter/control header the target expects) and OUT_DIR/fuzz_mllp (each
# file MLLP-framed behind the 2-byte control header, one chunk size of 64). The corpus comes
# from $PX_CORPUS (default ../shared/corpus next to the repository): every file, malformed
# ones (old fuzzer findings, invalid-* fixtures) and XML included; nothing is committed.
# The printf formats below mean their backslashes and $ literally.
# shellcheck disable=SC1003,SC2016
set -euo pipefail

out=${1:?usage: tests/fuzz/seeds.sh OUT_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=${PX_CORPUS:-$root/../shared/corpus}
max_seed_bytes=${PX_FUZZ_MAX_SEED_BYTES:-262144}

sources=()
[ -d "$corpus/hl7v2" ] && sources+=("$corpus/hl7v2")
[ -d "$root/tests/data" ] && sources+=("$root/tests/data")
if [ ${#sources[@]} -eq 0 ]; then
    echo "seeds: no corpus at $corpus/hl7v2 and no tests/data" >&2
    exit 1
fi

rm -rf "$out/fuzz_hl7_parse" "$out/fuzz_hl7_escape" "$out/fuzz_mllp"
mkdir -p "$out/fuzz_hl7_parse" "$out/fuzz_hl7_escape" "$out/fuzz_mllp"

count=0
while IFS= read -r -d '' f; do
    size=$(stat -c %s "$f")
    if [ "$size" -eq 0 ] || [ "$size" -gt "$max_seed_bytes" ]; then
        continue
    fi
    name=$(printf '%05d' "$count")
    cp "$f" "$out/fuzz_hl7_parse/$name"
    { printf '|^~\\&#\000'; cat "$f"; } >"$out/fuzz_hl7_escape/$name"
    { printf '\000\001\077\013'; cat "$f"; printf '\034\015'; } >"$out/fuzz_mllp/$name"
    count=$((count + 1))
done < <(find "${sources[@]}" -type f ! -name '*.md' -print0 | sort -z)

# A few hand-made streams the corpus does not have.
printf '\000\000GET / HTTP/1.1\r\n\r\n\013MSH|^~\\&|A\r\034\015' >"$out/fuzz_mllp/http"
printf '\000\000\026\003\001\000\005\001\000\013\000\000\013MSH|^~\\&|A\r\034\015' >"$out/fuzz_mllp/tls"
printf '\200\000\013\013abc\034x\013\034\015\013MSH|\034\015\013\006\034\015' >"$out/fuzz_mllp/faults"
printf '|^~\\&#\000\\F\\\\S\\\\T\\\\R\\\\E\\\\P\\\\X0D0A\\\\.br\\\\H\\x\\N\\\\Zab\\\\' \
    >"$out/fuzz_hl7_escape/all-escapes"
printf '#*!@$%%\001a\\b@c!d*e#$f' >"$out/fuzz_hl7_escape/odd-delims"

echo "seeds: $count files from ${sources[*]} into $out"
