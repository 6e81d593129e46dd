"""The scripts and instructions every evidence bundle carries (see :mod:`logmaster.archive.bundle`).

``verify.sh`` and ``verify_proof.sh`` are POSIX ``sh`` and call only ``sha256sum`` and
``openssl`` besides the basic text tools every system has (``sed``, ``grep``, ``awk``, ``sort``,
``od``, ``tr``, ``cat``, ``mktemp``, ``wc``, ``cut``, ``head``): a court expert runs them without
LogMaster or Python. They read the manifests with ``sed`` because a manifest's layout is fixed
(sorted keys, 2-space indent: ``manifest.dumps``), so a top-level key is always ``^  "key": ``.

The scripts are the same in every bundle; what a bundle holds is listed in ``manifests.txt``
(``day <manifest>`` for a day whose file is included, ``link <manifest>`` for a manifest included
only to keep the day-to-day chain unbroken).
"""
# ruff: noqa: E501 - shell lines are kept whole so the scripts read as they run

from __future__ import annotations

VERIFY_SH = r"""#!/bin/sh
# LogMaster evidence bundle check / delil paketi doğrulaması.
# Needs only sha256sum and openssl (plus sed, grep, awk, sort, od, tr, cat, mktemp, wc, cut, head).
# Yalnızca sha256sum ve openssl gerekir. Usage / kullanım:  sh verify.sh
# Exit status 0: every check passed; 1: something failed (each failure is named).
set -u
LC_ALL=C
export LC_ALL
cd "$(dirname "$0")" || exit 2
for tool in sha256sum openssl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ERROR: $tool not found / $tool bulunamadi"
    exit 2
  fi
done
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT
trap 'exit 2' INT TERM
FAILS=0
OPCA=certs/operator-chain.pem
TSACA=certs/tsa-ca.pem
UNTRUSTED=""
if [ -s certs/tsa-untrusted.pem ]; then UNTRUSTED="-untrusted certs/tsa-untrusted.pem"; fi

top() { # top-level value of key $2 in manifest $1, quotes and comma removed
  sed -n "s/^  \"$2\": \(.*\)\$/\1/p" "$1" | head -n 1 | sed 's/,$//; s/^"//; s/"$//'
}
sub() { # value of key $3 inside the top-level object $2 of manifest $1
  sed -n "/^  \"$2\": {/,/^  }/s/^    \"$3\": \(.*\)\$/\1/p" "$1" | head -n 1 |
    sed 's/,$//; s/^"//; s/"$//'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
firstline() { grep -v '^Using configuration' "$1" | head -n 1; }

echo "== 1. SHA256SUMS (every file of the bundle / paketteki her dosya)"
if [ ! -f SHA256SUMS ]; then
  echo "FAIL  SHA256SUMS is missing / SHA256SUMS yok"
  FAILS=$((FAILS + 1))
elif sha256sum -c --quiet SHA256SUMS >"$TMP/sums" 2>&1; then
  echo "OK    every file matches SHA256SUMS / tum dosyalar SHA256SUMS ile uyumlu"
else
  sed 's/^/FAIL  /' "$TMP/sums"
  FAILS=$((FAILS + 1))
fi

echo "== 2. Days / gunler: signature (.p7s), timestamp (.tsr), day file SHA-256"
if [ ! -f manifests.txt ]; then
  echo "FAIL  manifests.txt is missing / manifests.txt yok"
  exit 1
fi
: >"$TMP/chain"
while read -r kind m; do
  [ -n "$kind" ] || continue
  label="$m"
  if [ ! -f "$m" ]; then
    echo "FAIL  $label: manifest missing / manifest yok"
    FAILS=$((FAILS + 1))
    continue
  fi
  problems=""
  dev=$(top "$m" device); day=$(top "$m" date); part=$(top "$m" part)
  label="$dev $(echo "$day" | awk -F- '{ print $3 "." $2 "." $1 }')"
  [ "$part" = "0" ] || label="$label supplement $part"
  # The manifest must describe the day its path names (a swapped manifest does not).
  base=$(basename "$m" .manifest.json 2>/dev/null || echo "$m")
  dir=$(dirname "$m")
  want_day=$(echo "$dir" | awk -F/ '{ print $(NF-1) "-" $NF }')-$(echo "$base" | cut -c1-2)
  want_dev=$(echo "$dir" | awk -F/ '{ print $(NF-2) }')
  want_part=$(echo "$base" | sed -n 's/^[0-9][0-9]\.s\([0-9]*\)$/\1/p')
  [ -n "$want_part" ] || want_part=0
  if [ "$dev" != "$want_dev" ] || [ "$day" != "$want_day" ] || [ "$part" != "$want_part" ]; then
    problems="$problems; manifest is for $dev $day part $part, not $want_dev $want_day part $want_part (swapped?) / manifest baska gune ait"
  fi
  if openssl cms -verify -binary -inform DER -in "$m.p7s" -content "$m" -CAfile "$OPCA" \
      -purpose any -out /dev/null >"$TMP/out" 2>&1; then
    sig="signature OK"
  else
    problems="$problems; signature (.p7s) invalid / imza gecersiz: $(firstline "$TMP/out")"
  fi
  msha=$(sha "$m")
  tsa=$(sub "$m" stamp tsa); accredited=$(sub "$m" stamp accredited)
  note=""
  [ "$accredited" = "true" ] || note=" (stamp from $tsa: NOT from an accredited TSA / akredite olmayan TSA)"
  if [ -f "$m.tsr" ]; then
    # shellcheck disable=SC2086
    if openssl ts -verify -data "$m" -in "$m.tsr" -CAfile "$TSACA" $UNTRUSTED >"$TMP/out" 2>&1; then
      stamp="timestamp OK$note"
    else
      problems="$problems; timestamp (.tsr) invalid / zaman damgasi gecersiz: $(firstline "$TMP/out")"
    fi
  else
    list=$(grep -l "\"sha256\": \"$msha\"" archive/_daily/*/*/*.list.json 2>/dev/null | head -n 1)
    if [ -n "$list" ] && [ -f "$list.tsr" ]; then
      # shellcheck disable=SC2086
      if openssl cms -verify -binary -inform DER -in "$list.p7s" -content "$list" \
          -CAfile "$OPCA" -purpose any -out /dev/null >"$TMP/out" 2>&1 &&
        openssl ts -verify -data "$list" -in "$list.tsr" -CAfile "$TSACA" $UNTRUSTED \
          >"$TMP/out" 2>&1; then
        stamp="timestamp OK via daily list $list$note"
      else
        problems="$problems; daily list $list: signature or timestamp invalid: $(firstline "$TMP/out")"
      fi
    else
      problems="$problems; timestamp token (.tsr) missing / zaman damgasi (.tsr) yok"
    fi
  fi
  silence=$(top "$m" declared_silence)
  if [ "$silence" = "true" ]; then
    file="declared silence (no lines) / beyan edilmis sessiz gun"
  elif [ "$kind" = "link" ]; then
    file="chain link only (day outside the export) / yalnizca zincir halkasi"
  else
    f="archive/$(sub "$m" file path)"
    want=$(top "$m" sha256)
    if [ ! -f "$f" ]; then
      problems="$problems; day file $f missing / gun dosyasi yok"
    elif [ "$(sha "$f")" != "$want" ]; then
      problems="$problems; day file $f changed: SHA-256 differs from the manifest / gun dosyasi degismis"
    elif [ "$(wc -c <"$f" | tr -d ' ')" != "$(top "$m" size)" ]; then
      problems="$problems; day file $f size differs from the manifest"
    else
      file="day file SHA-256 OK ($(top "$m" lines) lines)"
    fi
  fi
  echo "$(top "$m" sequence) $msha $(top "$m" previous_manifest_sha256) $(top "$m" genesis) $dev $m" >>"$TMP/chain"
  if [ -n "$problems" ]; then
    echo "FAIL  $label [$m]${problems#;}"
    FAILS=$((FAILS + 1))
  else
    echo "OK    $label: $sig, $stamp, $file"
  fi
done <manifests.txt

echo "== 3. Day-to-day chain / gunden gune zincir (previous_manifest_sha256)"
sort -k5,5 -k1,1n "$TMP/chain" | awk '
  $5 != dev { dev = $5; seq = ""; }
  {
    if (seq == "") {
      if ($4 == "true") print "OK    " $5 ": starts at the genesis manifest " $6;
      else print "OK    " $5 ": starts at sequence " $1 ", after manifest " $3 " (outside the bundle)";
    } else if ($1 != seq + 1) {
      print "FAIL  " $5 ": sequence " seq " is followed by " $1 ": manifests removed / zincirde eksik gun"; bad++;
    } else if ($3 != sha) {
      print "FAIL  " $5 ": " $6 " does not name the previous manifest (" sha ") / zincir kirik"; bad++;
    } else print "OK    " $5 ": " $6 " follows sequence " seq;
    seq = $1; sha = $2;
  }
  END { exit bad > 0 }' || FAILS=$((FAILS + 1))

if [ -f verify_proof.sh ] && [ -d extract/proofs ]; then
  echo "== 4. Extracted lines / secilen satirlar: Merkle inclusion proofs"
  sh verify_proof.sh --all || FAILS=$((FAILS + 1))
fi

echo
if [ "$FAILS" -eq 0 ]; then
  echo "RESULT: OK - every check passed / SONUC: TAMAM - tum kontroller gecti"
  exit 0
fi
echo "RESULT: FAIL - $FAILS check group(s) failed, see FAIL lines above / SONUC: HATA"
exit 1
"""

VERIFY_PROOF_SH = r"""#!/bin/sh
# Check Merkle inclusion proofs of extracted lines / secilen satirlarin Merkle kanitlari.
# Usage: sh verify_proof.sh extract/proofs/<device>/<day>/<N>      (one proof)
#        sh verify_proof.sh --all                                   (every proof)
# A proof directory holds: line (the line's exact bytes, no LF), path (one "left|right <hex>"
# per line, lowest first) and manifest (the manifest file it belongs to, relative to the bundle).
# leaf = SHA-256(0x00 || line); node = SHA-256(0x01 || left || right); the last node must equal
# the manifest's merkle_root (whose .p7s and .tsr verify.sh checks).
set -u
LC_ALL=C
export LC_ALL
cd "$(dirname "$0")" || exit 2
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT
hex2bin() {
  printf "$(printf '%s\n' "$1" | awk '{ d = "0123456789abcdef"; s = "";
    for (i = 1; i <= length($0); i += 2) {
      v = (index(d, substr($0, i, 1)) - 1) * 16 + index(d, substr($0, i + 1, 1)) - 1;
      s = s sprintf("\\%03o", v) }
    print s }')"
}
hexof() { od -An -tx1 "$1" | tr -d ' \n'; }
check() {
  p="$1"
  m=$(cat "$p/manifest")
  root=$(sed -n 's/^  "merkle_root": "\([0-9a-f]*\)",\{0,1\}$/\1/p' "$m")
  { printf '\000'; cat "$p/line"; } | openssl dgst -sha256 -binary >"$TMP/h"
  while read -r side h; do
    hex2bin "$h" >"$TMP/s"
    if [ "$side" = "left" ]; then
      { printf '\001'; cat "$TMP/s" "$TMP/h"; } | openssl dgst -sha256 -binary >"$TMP/n"
    else
      { printf '\001'; cat "$TMP/h" "$TMP/s"; } | openssl dgst -sha256 -binary >"$TMP/n"
    fi
    cat "$TMP/n" >"$TMP/h"
  done <"$p/path"
  if [ "$(hexof "$TMP/h")" = "$root" ] && [ -n "$root" ]; then
    echo "OK    $p: the line belongs to $m (Merkle root $root)"
    return 0
  fi
  echo "FAIL  $p: the proof does not lead to the merkle_root of $m / kanit manifest ile uyusmuyor"
  return 1
}
if [ "${1:-}" = "--all" ]; then
  bad=0
  for p in extract/proofs/*/*/*; do
    [ -f "$p/line" ] || continue
    check "$p" || bad=$((bad + 1))
  done
  [ "$bad" -eq 0 ]
  exit $?
fi
[ $# -eq 1 ] || { echo "usage: sh verify_proof.sh <proof directory> | --all"; exit 2; }
check "$1"
"""
