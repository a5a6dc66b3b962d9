#!/usr/bin/env bash
# Builds Abseil with ThreadSanitizer for `make test-tsan`:
#
#   scripts/absl-tsan.sh PREFIX     # installs static TSan libs + CMake config
#
# Why: Debian's libabsl is not instrumented, and absl::Mutex takes and releases
# its lock with its own atomics and futex calls, which ThreadSanitizer only
# sees through annotations compiled into an instrumented absl. Against the
# packaged library every access guarded by an absl::Mutex is reported as a
# race (false positives everywhere). So the TSan build links this copy: the
# Debian source package of exactly the installed libabsl-dev version (same
# patches, same options.h and inline namespace), built with -fsanitize=thread.
#
# The source comes from the Debian mirror this machine's apt already uses,
# through a private sources list (the system's apt configuration is not
# touched). Idempotent: returns at once when PREFIX already holds the build
# for the installed version. Takes about 5 minutes on 2 cores.
set -euo pipefail

PREFIX="${1:?usage: scripts/absl-tsan.sh PREFIX}"
PREFIX="$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)"
VERSION="$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null || true)"
[[ -n "$VERSION" ]] || { echo "absl-tsan: libabsl-dev is not installed (scripts/setup.sh)" >&2; exit 1; }
STAMP="$PREFIX/.version"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" &&
      -f "$PREFIX/lib/cmake/absl/abslConfig.cmake" ]]; then
  exit 0
fi

# shellcheck source=apt-mirrors.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-mirrors.sh"

WORK="$(mktemp -d /tmp/absl-tsan.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial"
while read -r m; do
  case "$m" in
    */debian-security*) echo "deb-src $m bookworm-security main" ;;
    */debian | */debian/)
      echo "deb-src $m bookworm main"
      echo "deb-src $m bookworm-updates main" ;;
  esac
done < <(apt_mirrors | sort -u) >"$WORK/sources.list"
[[ -s "$WORK/sources.list" ]] ||
  { echo "absl-tsan: no Debian mirror found in /etc/apt/sources.list(.d)" >&2; exit 1; }

APT=(apt-get -q -o Dir::Etc::SourceList="$WORK/sources.list"
     -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$WORK/lists"
     -o APT::Sandbox::User=root)
echo "absl-tsan: fetching the Debian source of abseil $VERSION" >&2
"${APT[@]}" update >"$WORK/apt.log" 2>&1 ||
  { tail -5 "$WORK/apt.log" >&2; exit 1; }
(cd "$WORK" && "${APT[@]}" source --download-only "abseil=$VERSION") \
  >>"$WORK/apt.log" 2>&1 || { tail -5 "$WORK/apt.log" >&2; exit 1; }
(cd "$WORK" && dpkg-source -x ./abseil_*.dsc src) >>"$WORK/apt.log" 2>&1 ||
  { tail -5 "$WORK/apt.log" >&2; exit 1; }
if ! cmp -s "$WORK/src/absl/base/options.h" /usr/include/absl/base/options.h; then
  echo "absl-tsan: the source's options.h differs from the installed one" >&2
  exit 1
fi

echo "absl-tsan: building with -fsanitize=thread into $PREFIX" >&2
# As debian/rules builds the static libraries (C++17), plus TSan.
cmake -S "$WORK/src" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" >"$WORK/build.log" 2>&1 &&
  cmake --build "$WORK/build" -j "${JOBS:-2}" >>"$WORK/build.log" 2>&1 &&
  cmake --install "$WORK/build" >>"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log" >&2; exit 1; }
echo "$VERSION" >"$STAMP"
echo "absl-tsan: done" >&2
