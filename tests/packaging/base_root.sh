#!/usr/bin/env bash
# Fixture: a minimal Debian bookworm root made with debootstrap from this
# machine's mirror, as a tarball ($WORK_DIR/bookworm-min.tar). The install
# test unpacks it as a fresh root; the container test imports it as the
# image base. It is kept in the build directory and reused (delete it to
# refresh).
TEST_NAME=base_root
source "$(dirname "$0")/lib.sh"
require_root
require_tools debootstrap

if [ -s "$BASE_TAR" ]; then
  log "reusing $BASE_TAR"
  exit 0
fi
mkdir -p "$WORK_DIR"
tmp=$(mktemp -d "$WORK_DIR/debootstrap.XXXXXX")
trap 'remove_tree "$tmp"' EXIT
mirror=$(debian_mirror)
start=$SECONDS
debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
  { tail -n 30 "$tmp/debootstrap.log"; fail "debootstrap from $mirror failed"; }
chroot "$tmp/root" apt-get clean
tar -C "$tmp/root" --numeric-owner -cf "$tmp/base.tar" .
mv "$tmp/base.tar" "$BASE_TAR"
log "debootstrap minbase bookworm from $mirror: $((SECONDS - start)) s, $(du -m "$BASE_TAR" | cut -f1) MiB"
