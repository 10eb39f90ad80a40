#!/usr/bin/env bash
# lintian finds no errors in the package (warnings are printed, not fatal).
TEST_NAME=lintian
source "$(dirname "$0")/lib.sh"
require_tools lintian
deb=$(the_deb)
out=$(lintian --fail-on error --display-level '>=warning' "$deb" 2>&1) || fail "lintian reports errors:"$'\n'"$out"
grep -v 'running with root privileges is not recommended' <<<"$out" | grep . || true
log "ok: no lintian errors"
