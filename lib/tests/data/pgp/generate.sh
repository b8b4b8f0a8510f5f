#!/bin/sh
# Regenerates the OpenPGP fixtures of lib/src/debian/pgp.rs with GnuPG (an implementation
# independent of rPGP), in a throw-away GNUPGHOME. Run once; the outputs are committed.
# Keys are made anew on every run, so a rerun changes every file (the tests read fingerprints
# from the keyrings, never hard-code them). Times are faked, so the tests need no clock.
#
#   sh lib/tests/data/pgp/generate.sh        (from the workspace root; needs gpg 2.2+)
#
# Outputs (all signatures are cleartext InRelease-style, ed25519, SHA-256 unless named):
#   release.txt            the payload every good fixture signs (a small Release file)
#   archive.gpg/.asc       keyring: key A (primary [C] + signing subkey [S], like Debian's
#                          archive keys) — binary and ASCII-armored
#   ring.gpg               keyring: keys A, C, D, E, F in one binary file
#   ring.asc               keyring: keys A and B as two concatenated armored blocks
#   good.InRelease         A's subkey, signed 2025-01-01
#   tampered.InRelease     good.InRelease with one payload byte changed
#   other.InRelease        key B (primary [SC], like Debian's release keys), not in archive.gpg
#   unsigned.Release       release.txt, not signed
#   dash.InRelease         a payload with dash-escaped lines, trailing blanks and a blank last line
#   crlf.InRelease         release.txt with CRLF line ends
#   sha1.InRelease         A's subkey over SHA-1
#   future.InRelease       A's subkey, signed 2030-01-01
#   expired.InRelease      key C, signed 2024-01-11; a later self-signature (2024-01-02) made C
#                          expire on 2024-01-03
#   expired-later.InRelease key D, expiring 2024-02-01, signed 2024-01-15 (good at signing time)
#   revoked.InRelease      key E, signed 2024-01-05, E revoked 2024-01-10
#   subkey-revoked.InRelease key F's subkey, signed 2024-01-05, the subkey revoked 2024-01-10
#   two-sigs.InRelease     signed by B and by A's subkey (good with either keyring)
set -eu
out=$(cd "$(dirname "$0")" && pwd)
GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'rm -rf "$GNUPGHOME"' EXIT
g() { gpg --batch --quiet --pinentry-mode loopback --passphrase '' "$@"; }
at() { printf -- '--faked-system-time=%s!' "$1"; }
fpr() { g --list-keys --with-colons "$1" | awk -F: '$1=="fpr"{print $10; exit}'; }
subfpr() { g --list-keys --with-colons "$1" | awk -F: '$1=="fpr"{n++; if(n==2){print $10; exit}}'; }

cat >"$out/release.txt" <<'EOF'
Origin: Composer Test
Label: Composer Test
Suite: stable
Codename: fixture
Date: Mon, 01 Jan 2024 00:00:00 UTC
Architectures: amd64
Components: main
Description: composer OpenPGP test fixture
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-amd64/Packages
EOF

# Key A: certification-only primary with a signing subkey.
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Archive A <a@example.invalid>' ed25519 cert never
A=$(fpr a@example.invalid)
g "$(at 20240101T000000)" --quick-add-key "$A" ed25519 sign never
AS=$(subfpr "$A")
# Key B: primary that signs (like "Debian Stable Release Key").
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Other B <b@example.invalid>' ed25519 sign,cert never
B=$(fpr b@example.invalid)
# Key C: no expiry at first; a newer self-signature (2024-01-02) makes it expire 2024-01-03.
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Expired C <c@example.invalid>' ed25519 sign,cert never
C=$(fpr c@example.invalid)
# Key D: expires 2024-02-01.
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Expiring D <d@example.invalid>' ed25519 sign,cert 2024-02-01
D=$(fpr d@example.invalid)
# Key E: revoked later.
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Revoked E <e@example.invalid>' ed25519 sign,cert never
E=$(fpr e@example.invalid)
# Key F: signing subkey revoked later.
g "$(at 20240101T000000)" --quick-gen-key 'Composer Test Subkey-revoked F <f@example.invalid>' ed25519 cert never
F=$(fpr f@example.invalid)
g "$(at 20240101T000000)" --quick-add-key "$F" ed25519 sign never
FS=$(subfpr "$F")

sign() { # sign <time> <key!> <in> <out> [extra gpg args]
    t=$1 k=$2 i=$3 o=$4
    shift 4
    g "$(at "$t")" --local-user "$k" --digest-algo SHA256 "$@" --output "$o" --clearsign "$i"
}
rm -f "$out"/*.InRelease "$out"/*.gpg "$out"/*.asc
sign 20250101T000000 "$AS!" "$out/release.txt" "$out/good.InRelease"
sed 's/^Codename: fixture/Codename: fixturf/' "$out/good.InRelease" >"$out/tampered.InRelease"
sign 20250101T000000 "$B!" "$out/release.txt" "$out/other.InRelease"
cp "$out/release.txt" "$out/unsigned.Release"
printf 'Origin: dash test\n-leading dash\n- dash space\n-----five dashes\ntrailing blanks   \n\ttab\n\n' >"$GNUPGHOME/dash.txt"
sign 20250101T000000 "$AS!" "$GNUPGHOME/dash.txt" "$out/dash.InRelease"
sed 's/$/\r/' "$out/release.txt" >"$GNUPGHOME/crlf.txt"
sign 20250101T000000 "$AS!" "$GNUPGHOME/crlf.txt" "$out/crlf.InRelease"
g "$(at 20250101T000000)" --local-user "$AS!" --digest-algo SHA1 --output "$out/sha1.InRelease" --clearsign "$out/release.txt"
sign 20300101T000000 "$AS!" "$out/release.txt" "$out/future.InRelease" --ignore-time-conflict
sign 20240111T000000 "$C!" "$out/release.txt" "$out/expired.InRelease"
g "$(at 20240102T000000)" --quick-set-expire "$C" 2024-01-03
sign 20240115T000000 "$D!" "$out/release.txt" "$out/expired-later.InRelease"
sign 20240105T000000 "$E!" "$out/release.txt" "$out/revoked.InRelease"
sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$E.rev" >"$GNUPGHOME/e.rev"
g "$(at 20240110T000000)" --import "$GNUPGHOME/e.rev"
sign 20240105T000000 "$FS!" "$out/release.txt" "$out/subkey-revoked.InRelease"
printf 'key 1\nrevkey\ny\n0\n\ny\nsave\n' |
    gpg --batch --quiet --pinentry-mode loopback --passphrase '' "$(at 20240110T000000)" \
        --command-fd 0 --status-fd 2 --edit-key "$F" 2>/dev/null
g "$(at 20250101T000000)" --local-user "$B!" --local-user "$AS!" --digest-algo SHA256 \
    --output "$out/two-sigs.InRelease" --clearsign "$out/release.txt"

g --export "$A" >"$out/archive.gpg"
g --armor --export "$A" >"$out/archive.asc"
g --export "$A" "$C" "$D" "$E" "$F" >"$out/ring.gpg"
{ g --armor --export "$A"; g --armor --export "$B"; } >"$out/ring.asc"
g --list-keys --with-subkey-fingerprints
