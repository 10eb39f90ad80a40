#!/usr/bin/env bash
# The one set-up script: installs the Debian packages tributary needs, builds,
# and then either runs the agent on the quick-start config or runs every test.
#
#   scripts/bootstrap.sh run     install, build, run config/examples/quickstart.yaml
#   scripts/bootstrap.sh test    install, build, run ctest
#   scripts/bootstrap.sh test --sanitize   the same under ASan + UBSan (build-asan/)
#
# Nothing is downloaded except Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
shift || true
sanitize=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
case "$mode" in run|test|build) ;; *)
  echo "usage: scripts/bootstrap.sh run|test|build [--sanitize]" >&2; exit 2 ;;
esac

packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libsystemd-dev zlib1g-dev libdeflate-dev libre2-dev prometheus-cpp-dev
  libyaml-cpp-dev libboost-dev libssl-dev libcli11-dev libsimdjson-dev libmimalloc-dev
  libhowardhinnant-date-dev tzdata
  libgtest-dev libgmock-dev libbenchmark-dev kcat systemd-journal-remote
  curl
)
# The packaging tests (ctest -L packaging): build the .deb, lintian, a
# debootstrap root to install it into, systemd-analyze, podman for the image.
if [ "$mode" = test ]; then
  packages+=(debhelper dpkg-dev lintian debootstrap systemd podman runc)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [ "$sanitize" -eq 1 ]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIBUTARY_SANITIZE=ON)
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] || cmake -S . -B "$build_dir" "${generator[@]}" "${cmake_args[@]}"
cmake --build "$build_dir" --parallel "$(nproc)"

case "$mode" in
  run) exec "$build_dir/tributary" run -c config/examples/quickstart.yaml ;;
  test)
    # The packaging tests build and install the .deb and a container image:
    # once, in the Release suite; the sanitizer run skips them.
    skip=(); [ "$sanitize" -eq 1 ] && skip=(-LE packaging)
    cd "$build_dir" && exec ctest --output-on-failure --parallel "$(nproc)" --timeout 900 "${skip[@]}" ;;
  build) ;;
esac
