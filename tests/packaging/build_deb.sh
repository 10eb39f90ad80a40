#!/usr/bin/env bash
# Fixture: builds the .deb with packaging/build-deb.sh into $WORK_DIR/dist.
# Debug info is not compiled (-g stripped, no -dbgsym package) to save CI
# time; everything else is the package users get.
TEST_NAME=build_deb
source "$(dirname "$0")/lib.sh"
require_tools dpkg-buildpackage dh dpkg-parsechangelog

rm -rf "$DIST_DIR"
export WORKDIR=$WORK_DIR/deb-work  # fixed, so ccache hits on rebuilds
export DEB_BUILD_OPTIONS="nocheck noddebs"
export DEB_CXXFLAGS_STRIP=-g
start=$SECONDS
deb=$("$SOURCE_DIR/packaging/build-deb.sh" "$DIST_DIR" | tail -n 1)
[ -f "$deb" ] || fail "build-deb.sh printed no .deb path"
log "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - start)) s"

# The package carries what it must.
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/tributary ./etc/tributary/tributary.yaml ./lib/systemd/system/tributary.service \
            ./usr/share/man/man1/tributary.1.gz ./usr/share/doc/tributary/copyright \
            ./usr/share/doc/tributary/changelog.gz ./usr/share/tributary/sidecar.yaml \
            ./usr/lib/tmpfiles.d/tributary.conf ./usr/share/doc/tributary/README.md \
            ./usr/share/doc/tributary/docs/operations.md ./usr/share/doc/tributary/docs/reference/sources/file.md; do
  grep -q " $path\$" <<<"$contents" || fail "$path is missing from the package"
done
# The documentation the unit (systemctl status), the man page and the
# default config point at is there, under that name (not only as .gz).
for path in $(grep -ohE '/usr/share/doc/tributary/[A-Za-z0-9_./-]*[A-Za-z0-9_]' \
                "$SOURCE_DIR/packaging/systemd/tributary.service" "$SOURCE_DIR/packaging/debian/tributary.1" \
                "$SOURCE_DIR/packaging/tributary.yaml" | sort -u); do
  grep -qE " \.$path/?\$" <<<"$contents" || fail "$path, named in the unit, man page or config, is not in the package"
done
# README.md's links to docs/ lead to files in the package.
for link in $(grep -oE '\]\(docs/[^)#]*' "$SOURCE_DIR/README.md" | sed 's/^](//' | sort -u); do
  grep -qE " \./usr/share/doc/tributary/${link%/}/?\$" <<<"$contents" || fail "README.md links to $link, which is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/tributary/tributary.yaml ||
  fail "/etc/tributary/tributary.yaml is not a conffile"
[ "$(dpkg-deb -f "$deb" Version)" = "$(dpkg-parsechangelog -l "$SOURCE_DIR/packaging/debian/changelog" -S Version)" ] ||
  fail "package version differs from debian/changelog"
log "ok"
