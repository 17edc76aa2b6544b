#!/usr/bin/env bash
# Runs the built `parallax hl7 show|validate` over synthetic messages and corpus samples and
# checks output and exit codes. Usage: hl7_cli.sh PATH/TO/parallax  (PX_CORPUS optional).
set -u

px=${1:?usage: hl7_cli.sh PATH/TO/parallax}
corpus=${PX_CORPUS:-$(dirname "$0")/../../../shared/corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
checks=0
out="$work/out"
err="$work/err"

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run CMD...: runs parallax with stdout/stderr captured and sets $rc.
run() {
    "$px" "$@" >"$out" 2>"$err"
    rc=$?
}

expect_rc() {
    checks=$((checks + 1))
    [ "$rc" -eq "$1" ] || fail "$2: exit $rc, expected $1 (stderr: $(head -c 300 "$err"))"
}

# expect_line FILE TEXT WHAT: FILE has a line equal to TEXT.
expect_line() {
    checks=$((checks + 1))
    grep -qxF -- "$2" "$1" || fail "$3: no line '$2' in output: $(head -c 600 "$1")"
}

# expect_text FILE TEXT WHAT: FILE contains TEXT.
expect_text() {
    checks=$((checks + 1))
    grep -qF -- "$2" "$1" || fail "$3: '$2' not in output: $(head -c 600 "$1")"
}

expect_no_text() {
    checks=$((checks + 1))
    ! grep -qF -- "$2" "$1" || fail "$3: '$2' unexpectedly in output"
}

# A synthetic ADT^A01 v2.5 with repetitions, components, sub-components, escapes, a
# repeated segment and a local Z-segment; written with CR, LF, CRLF and a BOM.
segments=(
    'MSH|^~\&|LAB|NORTH|EHR|SOUTH|20240102030405||ADT^A01^ADT_A01|CTRL0001|P|2.5'
    'PID|1||11111^^^HOSP^MR~22222^^^STATE^SS||TESTER^ALPHA^B|MAIDEN&SUR|19700101|F|||1 MAIN ST^^SPRINGFIELD^^00000||^PRN^PH^^^555^0100'
    'OBX|1|ST|CODE^Example^LOCAL||A \F\ B \S\ C \T\ D \R\ E \E\ F \X41\|||||F'
    'OBX|2|CWE|CODE^Example^LOCAL||Y^Yes^HL70136||||||F'
    'OBX|3|ST|CODE||line\X0D\break||||||F'
    'NTE|1||A&B subcomponent'
    'ZXT|1|local^value'
)
printf '%s\r' "${segments[@]}" >"$work/cr.hl7"
printf '%s\n' "${segments[@]}" >"$work/lf.hl7"
printf '%s\r\n' "${segments[@]}" >"$work/crlf.hl7"
{ printf '\xEF\xBB\xBF'; printf '%s\r' "${segments[@]}"; } >"$work/bom.hl7"

run hl7 show "$work/cr.hl7"
expect_rc 0 "show on a CR message"
cp "$out" "$work/show_cr.txt"
expect_line "$out" 'message 1: ADT^A01, control id CTRL0001, version 2.5' "message header line"
expect_line "$out" 'PID  Patient Identification' "segment described"
expect_line "$out" '  MSH-1  Field Separator  |' "MSH-1 is the separator"
expect_line "$out" '  MSH-2  Encoding Characters  ^~\&' "MSH-2 shown raw"
expect_line "$out" '  MSH-9.3  Message Type / Message Structure  ADT_A01' "MSH-9 components"
expect_line "$out" '  PID-5.1  Patient Name / Family Name  TESTER' "PID-5.1 named"
expect_line "$out" '  PID-5.2  Patient Name / Given Name  ALPHA' "PID-5.2 named"
expect_line "$out" '  PID-3[1].1  Patient Identifier List / ID Number  11111' "first repetition"
expect_line "$out" '  PID-3[2].1  Patient Identifier List / ID Number  22222' "second repetition"
expect_line "$out" '  PID-3[2].5  Patient Identifier List / Identifier Type Code  SS' "repetition component"
expect_line "$out" '  PID-8  Administrative Sex  F' "primitive field"
expect_line "$out" '  PID-13.7  Phone Number - Home / Local Number  0100' "XTN component"
expect_line "$out" '  OBX-5  Observation Value  A | B ^ C & D ~ E \ F A' "escapes decoded"
expect_line "$out" 'OBX[2]  Observation/Result' "repeated segment numbered"
expect_line "$out" '  OBX[2]-5.2  Observation Value / Text  Yes' "OBX-5 named by OBX-2's type"
expect_line "$out" '  OBX[3]-5  Observation Value  line\x0Dbreak' "control bytes made visible"
expect_line "$out" '  PID-6.1.1  Mother'"'"'s Maiden Name / Family Name / Surname  MAIDEN' "sub-component named"
expect_line "$out" '  PID-6.1.2  Mother'"'"'s Maiden Name / Family Name / Own Surname Prefix  SUR' "second sub-component named"
expect_line "$out" '  NTE-3.1.1  Comment / - / -  A' "sub-components of a primitive split"
expect_line "$out" '  NTE-3.1.2  Comment / - / -  B subcomponent' "second sub-component"
expect_line "$out" 'ZXT  -' "local segment has no name"
expect_line "$out" '  ZXT-2.2  - / -  value' "local segment values shown"

for variant in lf crlf bom; do
    run hl7 show "$work/$variant.hl7"
    expect_rc 0 "show on a $variant message"
    checks=$((checks + 1))
    cmp -s "$out" "$work/show_cr.txt" || fail "show on $variant differs from CR: $(diff "$out" "$work/show_cr.txt" | head -5)"
done

run hl7 show - <"$work/crlf.hl7"
expect_rc 0 "show on standard input"
checks=$((checks + 1))
cmp -s "$out" "$work/show_cr.txt" || fail "show - differs from show FILE"

run hl7 show --json "$work/cr.hl7"
expect_rc 0 "show --json"
checks=$((checks + 1))
python3 - "$out" <<'EOF' || fail "show --json content"
import json, sys
doc = json.load(open(sys.argv[1]))
msg = doc["messages"][0]
assert msg["type"] == "ADT" and msg["trigger"] == "A01" and msg["version"] == "2.5", msg
assert msg["dictionary"] == "2.5"
values = {v["path"]: v for s in msg["segments"] for v in s["values"]}
v = values["PID-5.1"]
assert v["field_name"] == "Patient Name" and v["component_name"] == "Family Name", v
assert v["datatype"] == "FN" and v["value"] == "TESTER", v
assert values["PID-3[2].1"]["repetition"] == 2
assert values["OBX-5"]["value"] == "A | B ^ C & D ~ E \\ F A"
assert values["OBX[3]-5"]["value"] == "line\rbreak"
assert values["ZXT-1"]["field_name"] is None
segs = [s["name"] for s in msg["segments"]]
assert segs == ["MSH", "PID", "OBX", "OBX", "OBX", "NTE", "ZXT"], segs
assert msg["segments"][3]["occurrence"] == 2
EOF

# Latin-1 bytes still give valid JSON (read as Latin-1).
printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|L1|P|2.4\rPID|1||9||M\xdcLLER^J\r' >"$work/latin1.hl7"
run hl7 show --json "$work/latin1.hl7"
expect_rc 0 "show --json on Latin-1 text"
checks=$((checks + 1))
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=[x for s in d["messages"][0]["segments"] for x in s["values"] if x["path"]=="PID-5.1"][0]; assert v["value"]=="M\u00dcLLER", v' "$out" ||
    fail "Latin-1 value not converted"

# Versions: 2.8 uses the 2.7 names, 2.3 its own.
printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|V28|P|2.8\rPID|1||9||X^Y||19700101|M\r' >"$work/v28.hl7"
run hl7 show "$work/v28.hl7"
expect_rc 0 "show on 2.8"
expect_line "$out" 'message 1: ADT^A01, control id V28, version 2.8 (names from 2.7)' "2.8 falls back to 2.7"
expect_line "$out" '  PID-7  Date/Time of Birth  19700101' "2.7 name of PID-7"
printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|V23|P|2.3\rPID|1||9||X^Y||19700101|M\r' >"$work/v23.hl7"
run hl7 show "$work/v23.hl7"
expect_line "$out" '  PID-7  Date of Birth  19700101' "2.3 name of PID-7"
expect_line "$out" '  PID-8  Sex  M' "2.3 name of PID-8"

# A batch: envelope segments and one header per message.
{
    printf 'FHS|^~\\&|LAB|NORTH\r'
    printf 'BHS|^~\\&|LAB|NORTH\r'
    printf 'MSH|^~\\&|LAB|NORTH|EHR|SOUTH|20240101||ORU^R01|B1|P|2.5.1\rPID|1||1||ONE^A\r'
    printf 'MSH|^~\\&|LAB|NORTH|EHR|SOUTH|20240101||ORU^R01|B2|P|2.5.1\rPID|1||2||TWO^B\r'
    printf 'BTS|2\rFTS|1\r'
} >"$work/batch.hl7"
run hl7 show "$work/batch.hl7"
expect_rc 0 "show on a batch"
expect_line "$out" 'FHS  File Header  FHS|^~\&|LAB|NORTH' "file header shown"
expect_line "$out" 'message 1: ORU^R01, control id B1, version 2.5.1' "first message header"
expect_line "$out" 'message 2: ORU^R01, control id B2, version 2.5.1' "second message header"
expect_line "$out" '  PID-5.1  Patient Name / Family Name  TWO' "second message values"
expect_line "$out" 'BTS  Batch Trailer  BTS|2' "batch trailer shown"
run hl7 validate "$work/batch.hl7"
expect_rc 0 "validate on a valid batch"
expect_line "$out" "$work/batch.hl7: 2 messages, 0 problems" "batch summary"

# validate: valid, invalid, unreadable, stray bytes, empty.
run hl7 validate "$work/cr.hl7"
expect_rc 0 "validate on a valid message"
expect_line "$out" "$work/cr.hl7: 1 message, 0 problems" "valid summary"

printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\rPID|1\r' >"$work/no_msh10.hl7"
run hl7 validate "$work/cr.hl7" "$work/no_msh10.hl7"
expect_rc 1 "validate with a missing MSH-10"
expect_text "$out" "$work/no_msh10.hl7: message 1, segment 1 (MSH), field MSH-10: " "problem names file, message, segment and field"
expect_text "$out" "[missing_msh10]" "problem code named"
expect_line "$out" "$work/no_msh10.hl7: 1 message, 1 problem" "invalid summary"

run hl7 validate "$work/lf.hl7"
expect_rc 1 "validate reports LF separators"
expect_text "$out" "[lf_separator]" "LF separator problem"

printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|P1|P|2.5\rpid|1\r' >"$work/badseg.hl7"
run hl7 validate "$work/badseg.hl7"
expect_rc 1 "validate with a bad segment name"
expect_text "$out" "message 1 (control id P1), segment 2 (pid): " "bad segment located"

printf 'garbage line\rMSH|^~\\&|A|B|C|D|20240101||ADT^A01|G1|P|2.5\rPID|1\r' >"$work/stray.hl7"
run hl7 validate "$work/stray.hl7"
expect_rc 1 "validate with stray bytes"
expect_text "$out" "offset 0" "stray bytes located"
expect_line "$out" "$work/stray.hl7: 1 message, 1 problem" "message after stray bytes still checked"
run hl7 show "$work/stray.hl7"
expect_rc 1 "show with stray bytes"
expect_line "$out" 'message 1: ADT^A01, control id G1, version 2.5' "message after stray bytes shown"

: >"$work/empty.hl7"
run hl7 validate "$work/empty.hl7"
expect_rc 1 "validate on an empty file"
expect_text "$out" "no HL7 message found" "empty file reported"
run hl7 show "$work/empty.hl7"
expect_rc 1 "show on an empty file"

run hl7 validate "$work/does-not-exist.hl7"
expect_rc 3 "validate on a missing file"
expect_text "$err" "$work/does-not-exist.hl7" "unreadable path named"
run hl7 validate "$work/does-not-exist.hl7" "$work/cr.hl7"
expect_rc 3 "unreadable file wins over valid ones"
expect_line "$out" "$work/cr.hl7: 1 message, 0 problems" "other files still checked"
run hl7 validate "$work"
expect_rc 3 "validate on a directory"
run hl7 show "$work/does-not-exist.hl7"
expect_rc 3 "show on a missing file"
expect_text "$err" "$work/does-not-exist.hl7" "show names the unreadable path"

# Output that cannot be written is a runtime failure.
if [ -w /dev/full ]; then
    "$px" hl7 show "$work/cr.hl7" >/dev/full 2>"$err"
    rc=$?
    expect_rc 5 "show into a full device"
    "$px" hl7 validate "$work/cr.hl7" >/dev/full 2>"$err"
    rc=$?
    expect_rc 5 "validate into a full device"
fi

# Usage.
run hl7
expect_rc 2 "hl7 without a command"
run hl7 frobnicate
expect_rc 2 "unknown hl7 command"
run hl7 --help
expect_rc 0 "hl7 --help"
run hl7 show --help
expect_rc 0 "show --help"
expect_text "$out" "usage: parallax hl7 show" "show usage"
run hl7 validate --help
expect_rc 0 "validate --help"
expect_text "$out" "usage: parallax hl7 validate" "validate usage"
run hl7 show
expect_rc 2 "show without FILE"
run hl7 show "$work/cr.hl7" "$work/lf.hl7"
expect_rc 2 "show with two files"
run hl7 show --yaml "$work/cr.hl7"
expect_rc 2 "show with an unknown option"
run hl7 validate
expect_rc 2 "validate without FILE"
run hl7 validate --strict "$work/cr.hl7"
expect_rc 2 "validate with an unknown option"

# Corpus samples, when the corpus is present.
if [ -d "$corpus/hl7v2" ]; then
    q="$corpus/hl7v2/rethinkhealth-hl7v2/qa-fixtures"
    run hl7 show "$q/edge-escaped-delimiters.hl7"
    expect_rc 0 "show on a corpus message with escapes"
    expect_line "$out" '  PID-5.1  Patient Name / Family Name  DOE&SMITH' "corpus escape decoded"
    run hl7 show "$q/edge-crlf-line-endings.hl7"
    expect_rc 0 "show on a corpus CRLF message"
    run hl7 show "$corpus/hl7v2/mirth-connect/serializer/test-hl7-batch-input.txt"
    expect_rc 0 "show on the corpus batch"
    expect_line "$out" 'BHS  Batch Header  BHS|^~\&|||||' "corpus batch header"
    run hl7 show "$corpus/hl7v2/microsoft-fhir-converter/ADT01-23.hl7"
    expect_rc 0 "show on a corpus message with a BOM"
    expect_text "$out" "message 1: ADT^A01" "BOM message read"
    run hl7 validate "$q/invalid-missing-msh.hl7"
    expect_rc 1 "validate on a corpus message without MSH"
    run hl7 show "$corpus/hl7v2/mirth-connect/simplesender/TestADT.txt"
    expect_rc 0 "show on a 124-message stream"
    checks=$((checks + 1))
    [ "$(grep -c '^message ' "$out")" -eq 124 ] || fail "TestADT.txt: $(grep -c '^message ' "$out") messages shown, expected 124"
else
    echo "note: no corpus at $corpus; corpus samples skipped"
fi

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
