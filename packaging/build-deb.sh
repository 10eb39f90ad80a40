#!/usr/bin/env bash
# Builds the Debian package from this source tree:
#
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: ./dist)
#
# The source tree keeps its Debian files under packaging/debian, so this
# copies the tree (without .git and build directories) to a work directory,
# places packaging/debian there as ./debian and runs `dpkg-buildpackage -b`.
# OUTDIR receives tributary_<version>_<arch>.deb (plus .buildinfo/.changes,
# and the -dbgsym package unless DEB_BUILD_OPTIONS has noddebs); the last
# line printed is the .deb's path.
#
# Needs the Build-Depends of packaging/debian/control (scripts/bootstrap.sh
# installs them) plus dpkg-dev and debhelper. Environment:
#   WORKDIR            where to build (default: a temporary directory, removed
#                      afterwards); a fixed one lets ccache hit on rebuilds
#   DEB_BUILD_OPTIONS  passed on (default: nocheck; parallel jobs = cores)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One version: CMake's project() and debian/changelog must agree.
cmake_version=$(sed -n 's/^project(tributary VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
deb_version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
if [ "${deb_version%%-*}" != "$cmake_version" ]; then
  echo "build-deb: version mismatch: CMakeLists.txt says $cmake_version, packaging/debian/changelog says $deb_version" >&2
  echo "build-deb: add a changelog entry (dch -v $cmake_version) or fix project(VERSION)" >&2
  exit 1
fi

if [ -n "${WORKDIR:-}" ]; then
  work=$WORKDIR
  mkdir -p "$work"
  cleanup() { :; }
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-deb.XXXXXX")
  cleanup() { rm -rf --one-file-system "$work"; }
fi
trap cleanup EXIT

tree=$work/tributary-$cmake_version
rm -rf --one-file-system "$tree"
mkdir -p "$tree"
# The files of the tree: in a git checkout what git tracks or would track
# (.gitignore'd build output stays out); otherwise everything but VCS data,
# dist/ and build trees (directories holding a CMakeCache.txt).
if git -C "$src" rev-parse --show-toplevel >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z -c -o --exclude-standard |
     while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -C "$tree" -xf -
else
  tar -C "$src" --exclude-vcs --exclude=./dist --exclude-tag-all=CMakeCache.txt -cf - . | tar -C "$tree" -xf -
fi
cp -a "$src/packaging/debian" "$tree/debian"

# ccache (used by CMakeLists.txt when installed) keeps its usual cache even
# though debhelper gives the build a fresh HOME.
if command -v ccache >/dev/null; then
  CCACHE_DIR=${CCACHE_DIR:-$(ccache --get-config cache_dir)}
  export CCACHE_DIR
fi
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck}

(cd "$tree" && dpkg-buildpackage -b -us -uc -J"$(nproc)")

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=tributary_${deb_version}_${arch}.deb
for f in "$work"/tributary_"$deb_version"_"$arch".* "$work"/tributary-dbgsym_"$deb_version"_"$arch".*deb; do
  [ -e "$f" ] && mv -f "$f" "$out/"
done
rm -rf --one-file-system "$tree"
echo "$out/$deb"
