#!/usr/bin/env bash
# A fuzzing campaign: every target (or those named) for SECONDS each, as many at once as the
# machine has cores, each starting from its committed corpus; then one table of executions
# per second, coverage, corpus size and crashes. See fuzz/README.md.
#
#   fuzz/campaign.sh [SECONDS] [TARGET...]      (default: 60 seconds, every target)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). What the run finds
# goes to a scratch directory (printed at the end), never into the committed corpora:
# minimise new inputs with `cargo fuzz cmin` before committing any.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
jobs=$(nproc)
out=${WEIR_FUZZ_OUT:-$(mktemp -d /tmp/weir-fuzz.XXXXXX)}
mkdir -p "$out"

# Release builds (-O) without a sanitizer unless WEIR_FUZZ_SANITIZER names one (address,
# leak, ...). weir-core forbids unsafe code, so AddressSanitizer can only find bugs in
# dependencies' unsafe code, at a third to a fifth of the speed (fuzz/README.md); a campaign
# with it is a separate, slower run. Its own target directories, so that builds with and
# without a sanitizer do not replace each other.
sanitizer=${WEIR_FUZZ_SANITIZER:-none}
# Targets whose input is a script of steps (decoded by `arbitrary`), never bytes the code
# parses, are built without trace-compares: the comparison hooks take 40% of their time and
# help find magic values in parsed bytes, which these inputs do not have (fuzz/README.md,
# "Speed"). Every other target keeps them.
scripted=" pair batch relay relay_batch migration migration_batch key_update hostile hostile_batch driver piping pool circuit "
build() {
    local dir=$1
    shift
    cargo +nightly fuzz build -O -s "$sanitizer" --target-dir "$dir" "$@" >>"$out/build.log" 2>&1 ||
        { cat "$out/build.log"; exit 1; }
}
build "target/sanitizer-$sanitizer"
# The scripted targets also link with fat LTO in one codegen unit: the driver 13-16% more
# executions a second, pair 8%, for about 40 s more link time each (fuzz/README.md). The
# others did not gain (endpoint measured 9% slower, within this machine's noise).
for t in "${targets[@]}"; do
    if [[ $scripted == *" $t "* ]]; then
        CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
            build "target/sanitizer-$sanitizer-scripted" --no-trace-compares "$t"
    fi
done
bin_of() {
    local dir=target/sanitizer-$sanitizer
    if [[ $scripted == *" $1 "* ]]; then
        dir=$dir-scripted
    fi
    echo "$dir/x86_64-unknown-linux-gnu/release/$1"
}

# trace_inputs' committed corpus keeps inputs of at most 4 KiB (fuzz/README.md, Corpora:
# whole traces are large), so its campaigns explore that space, where what they find can be
# kept; left alone, libFuzzer would take the largest golden trace's length (110 KB) as its
# limit, and every campaign would find again what the last could not keep.
limits() {
    case $1 in
    trace_inputs) echo -max_len=4096 ;;
    esac
}

run() {
    local t=$1
    mkdir -p "$out/$t/corpus" "$out/$t/artifacts"
    # The scratch directory first: libFuzzer writes what it finds to the first corpus given.
    # shellcheck disable=SC2046 # limits gives zero or one word
    "$(bin_of "$t")" "$out/$t/corpus" "corpus/$t" $(limits "$t") \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/$t/artifacts/" >"$out/$t/log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# libFuzzer's lines: "INITED cov: N ..." after loading the corpus, "DONE cov: N ft: F corp:
# U/S ..." at the end, and "stat::NAME: VALUE" from -print_final_stats.
field() { grep -o "$2: [0-9]*" "$1" | tail -1 | cut -d' ' -f2; }
stat() { grep "^stat::$2:" "$1" | tail -1 | awk '{print $2}'; }
# Where in the run's TOTAL executions the edge count last grew (a share), and the count at a
# third and at two thirds of them: a plateau is a last growth early in the run.
growth() {
    awk -v total="$2" '
        /^#[0-9]+/ && / cov: / {
            n = substr($1, 2) + 0
            for (i = 2; i < NF; i++) if ($i == "cov:") c = $(i + 1) + 0
            if (c > last) { last = c; at = n }
            if (n <= total / 3) third = c
            if (n <= 2 * total / 3) two = c
        }
        END { printf "%d%% %s %s", (total > 0 ? 100 * at / total : 0), third, two }' "$1"
}
printf '%-14s %12s %10s %10s %10s %8s %8s %8s %8s %8s\n' target executions 'exec/s' 'cov start' \
    'cov end' 'last new' 'at 1/3' 'at 2/3' corpus crashes
for t in "${targets[@]}"; do
    log=$out/$t/log
    inited=$(grep "INITED" "$log" | head -1 || true)
    start=$(grep -o "cov: [0-9]*" <<<"$inited" | cut -d' ' -f2)
    end=$(field "$log" cov)
    corpus=$(grep -o "corp: [0-9]*" "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$out/$t/artifacts" -type f | wc -l)
    executions=$(stat "$log" number_of_executed_units)
    read -r last third two <<<"$(growth "$log" "${executions:-0}")"
    printf '%-14s %12s %10s %10s %10s %8s %8s %8s %8s %8s\n' "$t" "${executions:-?}" \
        "$(stat "$log" average_exec_per_sec)" "${start:-?}" "${end:-?}" "$last" "${third:-?}" \
        "${two:-?}" "${corpus:-?}" "$crashes"
done
echo "logs, new inputs and crashes: $out"
