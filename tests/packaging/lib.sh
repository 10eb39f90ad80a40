# Shared by the packaging tests (sourced). Each test is a bash script that
# exits 0 (pass), 77 (skipped: ctest SKIP_RETURN_CODE) or anything else
# (fail). The environment comes from CMakeLists.txt:
#   SOURCE_DIR  the source tree
#   WORK_DIR    <build>/packaging: the .deb (dist/) and the base root tarball,
#               shared by the tests of one ctest run
set -euo pipefail

: "${SOURCE_DIR:?}" "${WORK_DIR:?}"
DIST_DIR=$WORK_DIR/dist
BASE_TAR=$WORK_DIR/bookworm-min.tar

log() { printf '[%s %s] %s\n' "$(date +%T)" "${TEST_NAME:-packaging}" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIPPED: $*"; exit 77; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, chroot, podman)"; }

# Tools that scripts/bootstrap.sh's test mode installs: missing ones are a
# failure with the fix, not a skip.
require_tools() {
  local missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || fail "missing ${missing[*]}: run scripts/bootstrap.sh test (installs them)"
}

# The single .deb built by build_deb.sh.
the_deb() {
  local debs=("$DIST_DIR"/tributary_*.deb)
  [ -e "${debs[0]}" ] || fail "no .deb in $DIST_DIR (packaging.build_deb failed?)"
  [ ${#debs[@]} -eq 1 ] || fail "several .debs in $DIST_DIR: ${debs[*]}"
  echo "${debs[0]}"
}

# The Debian mirror this machine's apt uses (for debootstrap).
debian_mirror() {
  local uri
  uri=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
         awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
  if [ -z "$uri" ]; then
    uri=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true) |
           awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^http.*\/debian\/?$/) { print $i; exit } }')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# Gives ROOT the machine's Debian apt sources (bookworm, -updates, -security),
# so packages resolve against the same versions the .deb was built with.
copy_apt_sources() {
  local root=$1 f
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
    : >"$root/etc/apt/sources.list"
  elif [ -f /etc/apt/sources.list ]; then
    grep -E '^deb .*/debian(-security)?/? ' /etc/apt/sources.list >"$root/etc/apt/sources.list" || true
  fi
  for f in /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && grep -qE '/debian(-security)?/? ' "$f" && cp "$f" "$root/etc/apt/sources.list.d/"
  done
  return 0
}

# Unmounts anything below DIR, then removes it without crossing into other
# file systems.
remove_tree() {
  local dir=$1
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  findmnt -R -n -l -o TARGET --target "$dir" 2>/dev/null | awk -v d="$dir" 'index($0, d) == 1' |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$dir"
}

# Polls CMD until it succeeds or SECONDS pass; no fixed sleeps in tests.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# `validate` must pass: exit 0, or print its output and fail.
check_validate_output() {
  local rc=$1 out=$2
  [ "$rc" -eq 0 ] || fail "validate failed (exit $rc):"$'\n'"$out"
}
