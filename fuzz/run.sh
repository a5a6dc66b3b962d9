#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each one.
#   fuzz/run.sh [--seconds N] [--build-dir DIR] [--jobs N] [TARGET...]
# Defaults: 60 s per target (FUZZ_SECONDS), build dir build-fuzz, all targets.
# Each target starts from its seed corpus in fuzz/corpus/<target>/ (copied to
# a work directory, so the repository is not modified) and stops at the first
# crash, leak, sanitizer report or FUZZ_CHECK failure; the crashing input is
# kept under the work directory and the script exits 1. Figures per target
# (executions, exec/s, coverage, corpus size) are printed at the end.
# Used by `make fuzz` and by the CTest entry fuzz_short (10 s per target).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
build="$root/build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-2}"
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

cxx="$(command -v clang++-14 || command -v clang++ || true)"
cc="$(command -v clang-14 || command -v clang || true)"
if [[ -z "$cxx" || -z "$cc" ]]; then
  echo "fuzz/run.sh: clang is not installed (Debian: clang-14 libclang-rt-14-dev;" \
       "scripts/setup.sh installs them)" >&2
  exit 1
fi

if [[ ! -f "$build/build.ninja" ]]; then
  CC="$cc" CXX="$cxx" cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANALYTICS_FUZZ=ON >/dev/null
fi
cmake --build "$build" --target fuzzers -j "$jobs" >"$build/fuzz-build.log" 2>&1 || {
  tail -40 "$build/fuzz-build.log" >&2
  echo "fuzz/run.sh: building the fuzz targets failed (log: $build/fuzz-build.log)" >&2
  exit 1
}

if [[ ${#targets[@]} -eq 0 ]]; then
  for d in "$root"/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/analytics-fuzz.XXXXXX")"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/$t"
  [[ -x "$bin" ]] || { echo "fuzz/run.sh: no target $t" >&2; exit 1; }
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp "$root/fuzz/corpus/$t/"* "$work/$t/corpus/"
  dict=()
  [[ -f "$root/fuzz/dict/$t.dict" ]] && dict=(-dict="$root/fuzz/dict/$t.dict")
  log="$work/$t/log"
  echo "== $t: ${seconds} s"
  if "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
       -rss_limit_mb=2048 -max_len=16500 "${dict[@]}" \
       -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$log" 2>&1; then
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')"
    rate=$(( ${execs:-0} / (seconds > 0 ? seconds : 1) ))
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    units="$(ls "$work/$t/corpus" | wc -l)"
    summary+=("$(printf '%-20s %12s execs %9s/s  cov %6s  corpus %5s' "$t" "$execs" "$rate" "$cov" "$units")")
  else
    failed+=("$t")
    grep -E "ERROR|FUZZ_CHECK|runtime error|SUMMARY|#[0-9]+ 0x" "$log" | head -30 >&2 || true
    echo "fuzz/run.sh: $t FAILED; input: $(ls "$work/$t/artifacts/"* 2>/dev/null | head -1); log: $log" >&2
    summary+=("$(printf '%-20s FAILED' "$t")")
  fi
done
echo
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz/run.sh: failed: ${failed[*]} (work dir kept: $work)" >&2
  exit 1
fi
rm -rf "$work"
