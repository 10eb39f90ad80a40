#!/usr/bin/env bash
# `systemd-analyze verify` has nothing to say about the unit as packaged: no
# unknown keys, bad values or missing man page. The installed binary path is
# pointed at the packaged binary (extracted from the .deb) so the check of the
# Exec lines is real on a machine where the package is not installed.
TEST_NAME=systemd_verify
source "$(dirname "$0")/lib.sh"
require_tools systemd-analyze dpkg-deb
deb=$(the_deb)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tributary-unit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/root"
unit=$tmp/root/lib/systemd/system/tributary.service
cmp -s "$unit" "$SOURCE_DIR/packaging/systemd/tributary.service" || fail "the packaged unit differs from packaging/systemd/tributary.service"
# systemd applies RestartPreventExitStatus=78 to the main process only: a
# failing ExecStartPre= (a bad config) was restarted every RestartSec for
# ever. `run --check-environment` makes the checks in the main process.
grep -qE '^ExecStartPre=[^-]' "$unit" &&
  fail "the unit has an ExecStartPre= whose failure Restart=on-failure retries for ever: $(grep '^ExecStartPre=' "$unit")"
grep -qE '^ExecStart=/usr/bin/tributary run --check-environment$' "$unit" ||
  fail "ExecStart= is not \`tributary run --check-environment\`"
# Every program the unit runs is the agent's or from an Essential package:
# /bin/kill (procps) is missing on minimal systems, and `systemctl reload`
# then failed with 203/EXEC.
for prog in $(sed -nE 's/^Exec[A-Za-z]*=[-@:+!]*([^ ]+).*/\1/p' "$unit" | sort -u); do
  [ "$prog" = /usr/bin/tributary ] && continue
  pkg=$(dpkg -S "$prog" 2>/dev/null | grep -v '^diversion' | head -n 1 | cut -d: -f1)
  [ -n "$pkg" ] || fail "the unit runs $prog, which no installed package ships"
  [ "$(dpkg-query -W -f='${Essential}' "$pkg")" = yes ] ||
    fail "the unit runs $prog from $pkg, which is not Essential (and not a dependency of tributary)"
done
mkdir "$tmp/units"
sed "s#/usr/bin/tributary#$tmp/root/usr/bin/tributary#g" "$unit" >"$tmp/units/tributary.service"
out=$(MANPATH=$tmp/root/usr/share/man systemd-analyze verify "$tmp/units/tributary.service" 2>&1) ||
  fail "systemd-analyze verify failed:"$'\n'"$out"
[ -z "$out" ] || fail "systemd-analyze verify warns:"$'\n'"$out"

# The hardening holds up in systemd's own assessment (lower is better; 10 is
# no sandboxing at all).
score=$(systemd-analyze security --offline=true "$tmp/units/tributary.service" 2>&1 |
        sed -n 's/.*Overall exposure level for tributary.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "systemd-analyze security gave no exposure level"
awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "exposure level $score is above 2.5"
log "ok: verify is silent; exposure level $score"
