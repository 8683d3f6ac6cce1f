#!/usr/bin/env bash
# Benchmarks of keepalive-shim: W1-W5 against "no preload", the
# floor (the program makes the same setsockopt calls itself), Debian's
# libkeepalive0 and an empty preloaded library.
#
#   scripts/bench.sh           full run (a few minutes), writes BENCHMARKS.md
#   scripts/bench.sh --quick   smoke run (well under a minute), writes nothing
#   (both end with scripts/bench-live.sh: `status`/`apply` on running processes,
#   and scripts/bench-attach.sh: `attach`)
#
# Runs as root on Debian/Ubuntu; installs what it needs with apt-get (gcc,
# libc6-dev, binutils, libkeepalive0, strace). The library measured is
# $KEEPALIVE_SHIM_LIBRARY if set, else target/release/libkeepalive_shim.so
# (built with `cargo build --release` if missing); it is copied once at the
# start, so a rebuild during the run does not mix two libraries.
#
# Every variant of a workload runs in the same run, interleaved round by
# round in a rotating order; the tables give medians over rounds. Each
# benchmark process measures in blocks and reports its median block.
# The C programs are in tests/bench/
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if ((QUICK)); then
  W1_ROUNDS=5;  W1_ITER=1000; W1_WARM=200; W1_CYCLES=150; W1_REPEAT=1
  W2_ROUNDS=5;  W2_CYCLES=40
  W3_ROUNDS=8;  W3_BLOCK=15
  W4_ROUNDS=5;  W5_N=10000; W5_REPEAT=1; LD_STAT_RUNS=3
else
  W1_ROUNDS=61; W1_ITER=1500; W1_WARM=200; W1_CYCLES=1000; W1_REPEAT=3
  W2_ROUNDS=41; W2_CYCLES=60
  W3_ROUNDS=60; W3_BLOCK=40
  W4_ROUNDS=21;  W5_N=10000; W5_REPEAT=3; LD_STAT_RUNS=11
fi

# --- dependencies -------------------------------------------------------------
. scripts/lib/deps.sh
PROVIDES[libkeepalive0]=/usr/lib/libkeepalive.so
PROVIDES[libc6-dev]=/usr/include/stdio.h
install_apt_packages gcc libc6-dev binutils libkeepalive0 strace

LIBKA=/usr/lib/libkeepalive.so
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SRC_LIB=${KEEPALIVE_SHIM_LIBRARY:-$TARGET_DIR/release/libkeepalive_shim.so}
if [[ ! -f $SRC_LIB ]]; then
  echo "== $SRC_LIB is missing: cargo build --release --locked -p keepalive-shim"
  cargo build --release --locked -p keepalive-shim
fi

B=$(mktemp -d /tmp/ks-bench.XXXXXX)
trap 'rm -rf "$B"' EXIT
SHIM=$B/libkeepalive_shim.so
cp "$SRC_LIB" "$SHIM"
LIB_BUILT=$(date -u -r "$SRC_LIB" '+%Y-%m-%d %H:%M UTC')
EMPTY=$B/libempty.so
CMDS=$B/commands.txt
: >"$CMDS"

log_cmd() { # records a command line, shell-quoted, once (the first time it runs)
  local line
  line=$(printf '%q ' "$@")
  line=${line% }
  grep -qxF -- "$line" "$CMDS" || echo "$line" >>"$CMDS"
}

echo "== compiling tests/bench/*.c into $B"
CFLAGS=(-O2 -Wall -Wextra -Werror)
for prog in w1_connect w1_inproc w2_socket w3_spawn w4_rss w5_hold; do
  log_cmd gcc "${CFLAGS[@]}" -o "$B/$prog" "tests/bench/$prog.c"
  gcc "${CFLAGS[@]}" -o "$B/$prog" "tests/bench/$prog.c"
done
log_cmd gcc -O2 -shared -fPIC -o "$EMPTY" tests/bench/empty.c
gcc -O2 -shared -fPIC -o "$EMPTY" tests/bench/empty.c

# --- variants -----------------------------------------------------------------
# Every benchmark process gets exactly this environment (env -i): nothing
# from the caller's environment leaks in.
BASE_ENV=(env -i PATH=/usr/bin:/bin)
declare -A VENV=(
  [none]=""
  [empty]="LD_PRELOAD=$EMPTY"
  [shim]="LD_PRELOAD=$SHIM KEEPALIVE_SHIM_USER_TIMEOUT=auto"
  [shim-uto-off]="LD_PRELOAD=$SHIM"
  [shim-off]="LD_PRELOAD=$SHIM KEEPALIVE_SHIM=off"
  [libkeepalive]="LD_PRELOAD=$LIBKA KEEPIDLE=60 KEEPINTVL=10 KEEPCNT=6"
)
declare -A VDESC=(
  [none]="no preload"
  [empty]="empty C library preloaded"
  [shim]="keepalive-shim, USER_TIMEOUT=auto (5 options)"
  [shim-uto-off]="keepalive-shim, defaults: USER_TIMEOUT off (4 options)"
  [shim-off]="keepalive-shim, KEEPALIVE_SHIM=off"
  [libkeepalive]="libkeepalive0 0.3, same values (4 options)"
  [floor5]="floor: the program sets the 5 options itself"
  [floor4]="floor, 4 options (no TCP_USER_TIMEOUT)"
)

run_in() { # run_in VARIANT CMD...: runs CMD with the variant's environment
  local v=$1; shift
  # shellcheck disable=SC2206 # the variant strings are word lists on purpose
  local cmd=("${BASE_ENV[@]}" ${VENV[$v]} "$@")
  log_cmd "${cmd[@]}"
  "${cmd[@]}"
}

# --- small statistics helpers ---------------------------------------------------
field() { # field NAME < "a=1 b=2": the value of NAME
  tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}
median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
spread() { # half the interquartile range, in % of the median
  sort -g "$1" | awk '{a[NR]=$1} END {
    if (NR < 4) {print "-"; exit}
    q1=a[int((NR+3)/4)]; q3=a[int((3*NR+1)/4)]; m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2;
    printf "±%.1f%%", 50*(q3-q1)/m}'
}
paired() { # paired A B: the median over rounds of A/B (files of per-round values, in round order)
  paste "$1" "$2" | awk '$2 > 0 {print $1 / $2}' >"$B/paired.tmp"
  printf '%.4f' "$(median "$B/paired.tmp")"
}
calc() { awk "BEGIN {printf \"$1\", $2}"; }
rotate() { # rotate ROUND WORDS...: the words, rotated by ROUND, reversed on odd rounds
  local r=$1; shift
  local n=$# i rotated=()
  local words=("$@")
  for ((i = 0; i < n; i++)); do rotated+=("${words[(i + r) % n]}"); done
  if ((r % 2)); then printf '%s\n' "${rotated[@]}" | tac; else printf '%s\n' "${rotated[@]}"; fi
}

TABLE=$B/t1.md # the table, one file per part, assembled in order at the end
: >"$TABLE"
row() { local out="|" c; for c in "$@"; do out+=" $c |"; done; echo "$out" >>"$TABLE"; }
row_raw() { echo "$1" >>"$TABLE"; }
VERDICTS=$B/verdicts.md
: >"$VERDICTS"
verdict() { # verdict TEXT MET(1/0)
  if [[ $2 == 1 ]]; then echo "- **met**: $1" >>"$VERDICTS"; else echo "- **missed**: $1" >>"$VERDICTS"; fi
}
le() { awk "BEGIN {exit !($1 <= $2)}" && echo 1 || echo 0; }

echo "== library under test: $SRC_LIB ($(stat -c %s "$SHIM") bytes, sha256 $(sha256sum "$SHIM" | cut -c1-16))"

# --- W1: TCP socket + connect + close, one variant per process --------------------
echo "== W1: TCP socket()+connect()+close() to a loopback listener, $W1_ROUNDS rounds x 6 variants"
declare -A W1MODE=([none]=plain [floor5]=floor5 [shim]=plain [floor4]=floor4 [shim-uto-off]=plain [libkeepalive]=plain)
declare -A W1ENV=([none]=none [floor5]=none [shim]=shim [floor4]=none [shim-uto-off]=shim-uto-off [libkeepalive]=libkeepalive)
# What the last socket must show (SO_KEEPALIVE TCP_KEEPCNT TCP_USER_TIMEOUT): proof the variant worked.
declare -A W1EXPECT=([none]="0 9 0" [floor5]="1 6 120000" [shim]="1 6 120000" [floor4]="1 6 0" [shim-uto-off]="1 6 0" [libkeepalive]="1 6 0")
W1V=(none floor5 shim floor4 shim-uto-off libkeepalive)
W1_BAD=""
for ((r = -1; r < W1_ROUNDS; r++)); do # round -1 warms up and is not recorded
  for v in $(rotate $((r < 0 ? 0 : r)) "${W1V[@]}"); do
    out=$(run_in "${W1ENV[$v]}" "$B/w1_connect" "${W1MODE[$v]}" "$W1_ITER" "$W1_WARM")
    got="$(field SO_KEEPALIVE <<<"$out") $(field TCP_KEEPCNT <<<"$out") $(field TCP_USER_TIMEOUT <<<"$out")"
    [[ $got == "${W1EXPECT[$v]}" ]] || W1_BAD+=" $v(got $got, want ${W1EXPECT[$v]})"
    ((r < 0)) || field ns_per_op <<<"$out" >>"$B/w1.$v"
  done
  printf '.'
done
echo
[[ -z $W1_BAD ]] || echo "WARNING: W1 variants did not set what they should:$W1_BAD" >&2
declare -A W1MED
for v in "${W1V[@]}"; do W1MED[$v]=$(median "$B/w1.$v"); done
row_raw "| workload | variant | median | spread | ratio vs no preload | note |"
row_raw "|---|---|---|---|---|---|"
for v in "${W1V[@]}"; do
  note=""
  case $v in
    shim) note="shim / floor = $(paired "$B/w1.shim" "$B/w1.floor5")" ;;
    shim-uto-off) note="shim / floor4 = $(paired "$B/w1.shim-uto-off" "$B/w1.floor4"); shim / libkeepalive0 = $(paired "$B/w1.shim-uto-off" "$B/w1.libkeepalive")" ;;
    libkeepalive) note="libkeepalive0 / floor4 = $(paired "$B/w1.libkeepalive" "$B/w1.floor4")" ;;
  esac
  row "W1 TCP connect, per process" "${VDESC[$v]}" "$(calc %.2f "${W1MED[$v]}/1000") µs" "$(spread "$B/w1.$v")" \
      "$(calc %.3f "$(paired "$B/w1.$v" "$B/w1.none")")" "$note"
done

# --- W1 inside one process: the hook against the same raw syscalls ------------------
echo "== W1 in one process: hooked libc calls vs raw syscall()s, $W1_REPEAT x $W1_CYCLES cycles x 4 runs"
declare -A INPROC_N=([shim]=5 [shim-uto-off]=4 [libkeepalive]=4 [none]=0)
INV=(shim shim-uto-off libkeepalive none)
for ((r = 0; r < W1_REPEAT; r++)); do
  for v in $(rotate "$r" "${INV[@]}"); do
    out=$(run_in "$v" "$B/w1_inproc" "${INPROC_N[$v]}" "$W1_CYCLES" 50 | tr '\n' ' ')
    for k in hook_ns raw_ns bare_ns hook_minus_raw_ns options_set_by_library; do
      field "$k" <<<"$out" >>"$B/in.$v.$k"
    done
  done
  printf '.'
done
echo
for v in "${INV[@]}"; do
  set_by=$(median "$B/in.$v.options_set_by_library")
  d=$(median "$B/in.$v.hook_minus_raw_ns"); raw=$(median "$B/in.$v.raw_ns"); bare=$(median "$B/in.$v.bare_ns")
  declare "IN_${v//-/_}_D=$d" "IN_${v//-/_}_RAW=$raw"
  if [[ $v == none ]]; then
    desc="control: no preload, libc vs syscall(), no options"
    note="measurement noise; bare connect $(calc %.2f "$bare/1000") µs"
  else
    desc="${VDESC[$v]}: hook - the same raw syscalls"
    note="library set ${set_by%.*} option(s); the ${INPROC_N[$v]} raw setsockopt cost $(calc %.1f "100*($raw-$bare)/$bare")% of a bare connect"
  fi
  row "W1 in one process" "$desc" "$(calc %+.0f "$d") ns/connect" "-" "$(calc %.4f "1+$d/$raw") (hook / floor)" "$note"
done

# --- W1 syscalls per connect (strace) -------------------------------------------------
echo "== W1 syscalls per connect (strace -c, 1100 minus 100 connects)"
syscalls_total() { # syscalls_total VARIANT MODE ITER
  local f=$B/strace.$1.$3
  # shellcheck disable=SC2206
  local cmd=("${BASE_ENV[@]}" strace -f -c -o "$f")
  for e in ${VENV[${W1ENV[$1]}]}; do cmd+=(-E "$e"); done
  cmd+=("$B/w1_connect" "$2" "$3" 0)
  log_cmd "${cmd[@]}"
  "${cmd[@]}" >/dev/null
  awk '$NF == "total" {print $4}' "$f" | head -1
}
if command -v strace >/dev/null; then
  sys_row=()
  for v in "${W1V[@]}"; do
    t1=$(syscalls_total "$v" "${W1MODE[$v]}" 100); t2=$(syscalls_total "$v" "${W1MODE[$v]}" 1100)
    per=$(calc %.2f "($t2-$t1)/1000")
    declare "SYS_${v//-/_}=$per"
    sys_row+=("${v}: $per")
  done
  sys_list=$(IFS=';'; echo "${sys_row[*]}")
  # shellcheck disable=SC2154 # SYS_<variant> are set by the declare above
  row "W1 syscalls per connect" "strace -c: socket, setsockopt..., connect, accept, 2x close" "${sys_list//;/, }" "-" "-" "hook adds $(calc %+.2f "$SYS_shim-$SYS_floor5") syscalls vs floor"
fi

# --- W2: sockets the shim leaves alone ------------------------------------------------------
echo "== W2: UDP and AF_UNIX socket()+close(), $W2_ROUNDS rounds x 4 variants x 2 kinds"
W2V=(none shim libkeepalive empty)
for ((r = -1; r < W2_ROUNDS; r++)); do
  for kind in udp unix; do
    for v in $(rotate $((r < 0 ? 0 : r)) "${W2V[@]}"); do
      out=$(run_in "$v" "$B/w2_socket" "$kind" "$W2_CYCLES" 200 | tr '\n' ' ')
      if ((r >= 0)); then
        field libc_ns <<<"$out" >>"$B/w2.$kind.$v"
        field libc_minus_raw_ns <<<"$out" >>"$B/w2.$kind.$v.diff"
        field raw_ns <<<"$out" >>"$B/w2.$kind.$v.raw"
      fi
    done
  done
  printf '.'
done
echo
W2_WORST=0
for kind in udp unix; do
  for v in "${W2V[@]}"; do
    m=$(median "$B/w2.$kind.$v"); d=$(median "$B/w2.$kind.$v.diff"); raw=$(median "$B/w2.$kind.$v.raw")
    in_ratio=$(calc %.4f "1+$d/$raw")
    [[ $v == shim ]] && W2_WORST=$(awk "BEGIN {print ($in_ratio > $W2_WORST) ? $in_ratio : $W2_WORST}")
    pr=$(calc %.3f "$(paired "$B/w2.$kind.$v" "$B/w2.$kind.none")")
    [[ $v == shim ]] && declare "W2_${kind}_PP=$pr"
    row "W2 $( [[ $kind == udp ]] && echo 'UDP' || echo 'AF_UNIX') socket+close" "${VDESC[$v]}" "$(calc %.0f "$m") ns" "$(spread "$B/w2.$kind.$v")" \
        "$pr" "in one process: hook $(calc %+.1f "$d") ns = $in_ratio x raw syscall"
  done
done

# --- W4: peak RSS and file size --------------------------------------------------------------
TABLE=$B/t4.md
echo "== W4: peak RSS of a small program (VmHWM), $W4_ROUNDS rounds x 4 variants"
W4V=(none empty shim libkeepalive)
for ((r = 0; r < W4_ROUNDS; r++)); do
  for v in $(rotate "$r" "${W4V[@]}"); do
    out=$(run_in "$v" "$B/w4_rss")
    for k in hwm_kb anon_kb stack_kb; do field $k <<<"$out" >>"$B/w4.$v.$k"; done
  done
done
declare -A W4M W4A W4S
for v in "${W4V[@]}"; do
  W4M[$v]=$(median "$B/w4.$v.hwm_kb"); W4A[$v]=$(median "$B/w4.$v.anon_kb"); W4S[$v]=$(median "$B/w4.$v.stack_kb")
done
for v in "${W4V[@]}"; do
  row "W4 peak RSS (connects once)" "${VDESC[$v]}" "${W4M[$v]} KiB" "$(spread "$B/w4.$v.hwm_kb")" "$(calc %.3f "${W4M[$v]}/${W4M[none]}")" \
      "delta $(calc %+.0f "${W4M[$v]}-${W4M[none]}") KiB; private (RssAnon) $(calc %+.0f "${W4A[$v]}-${W4A[none]}") KiB, of which stack $(calc %+.0f "${W4S[$v]}-${W4S[none]}") KiB"
done
log_cmd strip -o "$B/stripped.so" "$SHIM"
strip -o "$B/stripped.so" "$SHIM"
strip -o "$B/stripped-ka.so" "$LIBKA"
strip -o "$B/stripped-empty.so" "$EMPTY"
SIZE=$(stat -c %s "$SHIM"); SSIZE=$(stat -c %s "$B/stripped.so")
NEEDED=$(readelf -d "$SHIM" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | paste -sd, -)
GLIBC_MAX=$(objdump -T "$SHIM" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
ALLOC=$(objdump -T "$SHIM" | awk '$NF ~ /^(malloc|calloc|realloc|free|mmap|mmap64|sbrk|brk)$/ {print $NF}' | paste -sd, -)
row "W4 library file size" "keepalive-shim as built / stripped" "$(calc %.1f "$SIZE/1024") / $(calc %.1f "$SSIZE/1024") KiB" "-" "-" \
    "NEEDED: $NEEDED; highest symbol version $GLIBC_MAX; libkeepalive0 stripped $(calc %.1f "$(stat -c %s "$B/stripped-ka.so")/1024") KiB, empty $(calc %.1f "$(stat -c %s "$B/stripped-empty.so")/1024") KiB"

# --- W3: process start ----------------------------------------------------------------------
TABLE=$B/t3.md
echo "== W3: posix_spawn(/bin/true) + wait, $W3_ROUNDS rounds x $W3_BLOCK spawns"
# The loader's own statistics and the syscalls of one start, per variant.
declare -A LDREL LDRELATIVE LDFINAL LDCYC NSYS
for v in none empty shim libkeepalive; do
  : >"$B/ldcyc.$v"
  for ((i = 0; i < LD_STAT_RUNS; i++)); do
    rm -f "$B/ld.$v".*
    run_in "$v" LD_DEBUG=statistics LD_DEBUG_OUTPUT="$B/ld.$v" /bin/true
    f=$(ls "$B/ld.$v".*)
    sed -n 's/.*total startup time in dynamic loader: *\([0-9]*\).*/\1/p' "$f" >>"$B/ldcyc.$v"
  done
  LDREL[$v]=$(sed -n 's/.* number of relocations: *\([0-9]*\).*/\1/p' "$f" | head -1)
  LDRELATIVE[$v]=$(sed -n 's/.*number of relative relocations: *\([0-9]*\).*/\1/p' "$f" | head -1)
  LDFINAL[$v]=$(sed -n 's/.*final number of relocations: *\([0-9]*\).*/\1/p' "$f" | head -1)
  LDCYC[$v]=$(median "$B/ldcyc.$v")
  NSYS[$v]=-
  if command -v strace >/dev/null; then
    # shellcheck disable=SC2206
    cmd=("${BASE_ENV[@]}" strace -o "$B/st.$v" -E PATH=/usr/bin:/bin)
    for e in ${VENV[$v]}; do cmd+=(-E "$e"); done
    cmd+=(/bin/true)
    log_cmd "${cmd[@]}"
    "${cmd[@]}"
    NSYS[$v]=$(grep -vc '^+++' "$B/st.$v")
  fi
done
syscall_diff() { # syscall_diff A B: the syscalls B makes beyond A, by name
  awk -F'(' 'FNR == 1 {f++} /^[a-z_0-9]+\(/ {n[$1] += (f == 1 ? -1 : 1)}
    END {for (k in n) if (n[k]) printf "%+d %s, ", n[k], k}' "$1" "$2" | sed 's/, $//'
}
paths_diff() { # paths_diff A B: the absolute paths B's syscalls name that A's do not
  comm -13 <(grep -o '"/[^"]*"' "$1" | sort -u) <(grep -o '"/[^"]*"' "$2" | sort -u) |
    grep -v "^\"$B" | paste -sd' ' -
}
W3_EXTRA="n/a (strace missing)"
if [[ -s $B/st.shim && -s $B/st.empty ]]; then
  W3_EXTRA="$(syscall_diff "$B/st.empty" "$B/st.shim"); paths: $(paths_diff "$B/st.empty" "$B/st.shim")"
fi
# Attribution: C libraries that only imitate the shim's start-up traits
# found above (extra NEEDED libraries, the constructor's stack, a file it
# opens), one at a time and all together (tests/bench/ctor_model.c).
needed_of() { readelf -d "$1" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | sort; }
# (libc.so.6 is loaded by every dynamic program anyway: not an extra.)
EXTRA_NEEDED=$(comm -13 <(needed_of "$EMPTY") <(needed_of "$SHIM") | grep -v -e '^libc\.so' -e '^ld-linux' | paste -sd' ' - || true)
STACK_KIB=$(calc %.0f "${W4S[shim]}-${W4S[empty]}")
OPEN_PATH=""
if [[ -s $B/st.shim && -s $B/st.empty ]]; then
  OPEN_PATH=$(comm -13 <(grep -o 'open[a-z]*([^"]*"/[^"]*"' "$B/st.empty" | sed 's/.*"\(\/[^"]*\)"/\1/' | sort -u) \
                       <(grep -o 'open[a-z]*([^"]*"/[^"]*"' "$B/st.shim" | sed 's/.*"\(\/[^"]*\)"/\1/' | sort -u) |
              grep -v -e '\.so' -e "^$B" | head -1 || true)
fi
model() { # model NAME DESCRIPTION GCC-ARGS...: builds $B/model-NAME.so, adds the variant
  local name=$1 desc=$2; shift 2
  local cmd=(gcc -O2 -Wall -Wextra -Werror -shared -fPIC "$@" -o "$B/model-$name.so" tests/bench/ctor_model.c)
  local needed=()
  read -ra needed <<<"$EXTRA_NEEDED"
  [[ -n $EXTRA_NEEDED && $name =~ ^(needed|all)$ ]] && cmd+=("-Wl,--no-as-needed" "${needed[@]/#/-l:}")
  log_cmd "${cmd[@]}"
  "${cmd[@]}"
  VENV[model-$name]="LD_PRELOAD=$B/model-$name.so"
  VDESC[model-$name]="model: $desc"
  W3V+=("model-$name")
}
W3V=(none empty shim shim-off libkeepalive)
ALL_ARGS=() ALL_DESC=()
if [[ -n $EXTRA_NEEDED ]]; then
  model needed "empty + NEEDED $EXTRA_NEEDED"; ALL_DESC+=("NEEDED $EXTRA_NEEDED")
fi
if ((STACK_KIB > 0)); then
  model stack "empty + constructor filling $STACK_KIB KiB of stack" -DSTACK_KIB="$STACK_KIB"
  ALL_ARGS+=(-DSTACK_KIB="$STACK_KIB"); ALL_DESC+=("$STACK_KIB KiB stack")
fi
if [[ -n $OPEN_PATH ]]; then
  model open "empty + constructor opening $OPEN_PATH, fstat(2)" -DOPEN_PATH="\"$OPEN_PATH\""
  ALL_ARGS+=(-DOPEN_PATH="\"$OPEN_PATH\""); ALL_DESC+=("open $OPEN_PATH")
fi
if ((${#ALL_DESC[@]} > 1)); then
  all_list=$(IFS=';'; echo "${ALL_DESC[*]}")
  model all "all of: ${all_list//;/, }" "${ALL_ARGS[@]}"
fi

w3_args=()
for v in "${W3V[@]}"; do w3_args+=("$v" "${VENV[$v]}"); done
log_cmd "$B/w3_spawn" "$W3_ROUNDS" "$W3_BLOCK" "${w3_args[@]}"
"$B/w3_spawn" "$W3_ROUNDS" "$W3_BLOCK" "${w3_args[@]}" >"$B/w3.out"
declare -A W3US W3R W3F
while read -r name rest; do
  W3US[$name]=$(field us_per_spawn <<<"$rest"); W3R[$name]=$(field paired_ratio <<<"$rest")
  W3F[$name]=$(field minor_faults <<<"$rest")
done <"$B/w3.out"
for v in "${W3V[@]}"; do
  vs_empty=$(calc %.3f "${W3R[$v]}/${W3R[empty]}")
  extra=""
  [[ -n ${LDREL[$v]:-} ]] && extra="; LD_DEBUG=statistics: ${LDREL[$v]} relocations (${LDRELATIVE[$v]} relative, ${LDFINAL[$v]} final), loader $(calc %.0f "${LDCYC[$v]}/1000")k cycles; ${NSYS[$v]} syscalls"
  row "W3 exec /bin/true" "${VDESC[$v]}" "${W3US[$v]} µs" "-" "$(calc %.3f "${W3R[$v]}")" "vs empty library $vs_empty; ${W3F[$v]} page faults$extra"
done

W3_MODEL=""
for m in model-all model-needed model-stack model-open; do
  [[ -n ${W3R[$m]:-} ]] && W3_MODEL+="${VDESC[$m]#model: }: $(calc %.3f "${W3R[$m]}/${W3R[empty]}") x empty; "
done
# --- W5: 10,000 connections held by one process ---------------------------------------------
TABLE=$B/t5.md
echo "== W5: $W5_N simultaneous loopback connections in one process, $W5_REPEAT x 3 variants"
W5V=(none floor5 shim)
declare -A W5MODE=([none]=plain [floor5]=floor5 [shim]=plain)
declare -A W5ENV=([none]=none [floor5]=none [shim]=shim)
for ((r = 0; r < W5_REPEAT; r++)); do
  for v in $(rotate "$r" "${W5V[@]}"); do
    run_in "${W5ENV[$v]}" "$B/w5_hold" "$W5_N" "${W5MODE[$v]}" >"$B/w5.$v.$r"
    q=$(grep "^conns=$((W5_N / 4)) " "$B/w5.$v.$r"); f=$(grep "^conns=$W5_N " "$B/w5.$v.$r")
    z=$(grep "^conns=0 rss" "$B/w5.$v.$r")
    echo $(( $(field anon_kb <<<"$f") - $(field anon_kb <<<"$q") )) >>"$B/w5.$v.anon"
    echo $(( $(field rss_kb <<<"$f") - $(field rss_kb <<<"$q") )) >>"$B/w5.$v.rss"
    echo $(( $(field heap_bytes <<<"$f") - $(field heap_bytes <<<"$z") )) >>"$B/w5.$v.heap"
    echo $(( $(field anon_kb <<<"$f") - $(field anon_kb <<<"$z") )) >>"$B/w5.$v.anon_total"
    field us_per_conn <<<"$f" >>"$B/w5.$v.us"
    grep -q '^last_SO_KEEPALIVE=1' "$B/w5.$v.$r" || [[ $v == none ]] || echo "WARNING: W5 $v: SO_KEEPALIVE not set" >&2
  done
done
span=$((W5_N - W5_N / 4))
declare -A W5A
for v in "${W5V[@]}"; do
  a=$(median "$B/w5.$v.anon"); W5A[$v]=$a
  row "W5 $W5_N connections held" "${VDESC[$v]}" "$(median "$B/w5.$v.us") µs/conn to open" "-" "-" \
      "RssAnon +$(median "$B/w5.$v.anon_total") KiB over $W5_N conns; from $((W5_N / 4)) to $W5_N: +$a KiB = $(calc %.1f "$a*1024/$span") B/conn (VmRSS +$(median "$B/w5.$v.rss") KiB); malloc heap +$(median "$B/w5.$v.heap") B"
done
# The shape: RssAnon at each quarter, from the last run of each variant.
shape=""
for v in none shim; do
  shape+="$v: $(grep '^conns=' "$B/w5.$v.$((W5_REPEAT - 1))" | grep anon_kb | while read -r l; do echo -n "$(field conns <<<"$l")→$(field anon_kb <<<"$l") "; done)KiB; "
done
row "W5 RssAnon by connections" "last run of each" "-" "-" "-" "${shape%; }"

# --- verdicts against the overhead targets ---------------------------------------------------------
W1_PP=$(paired "$B/w1.shim" "$B/w1.floor5")
# IN_<variant>_D/_RAW, SYS_<variant> and W2_<kind>_PP are set by `declare` in the loops above.
# shellcheck disable=SC2154
W1_IN=$(calc %.4f "1+$IN_shim_D/$IN_shim_RAW")
verdict "W1 within 1% of the floor: in one process the hook adds $(calc %+.0f "$IN_shim_D") ns per connect = $W1_IN x the floor (the same 5 setsockopt without a hook); per process shim/floor = $W1_PP ($(spread "$B/w1.shim") spread per variant)" \
        "$(le "$W1_IN" 1.01)"
# shellcheck disable=SC2154
verdict "W1 no worse than libkeepalive0, like for like (4 options): in one process the hook adds $(calc %+.0f "$IN_shim_uto_off_D") ns vs libkeepalive0's $(calc %+.0f "$IN_libkeepalive_D") ns; per process $(paired "$B/w1.shim-uto-off" "$B/w1.libkeepalive") x libkeepalive0" \
        "$(le "$IN_shim_uto_off_D" "$IN_libkeepalive_D")"
if [[ -n ${SYS_shim:-} ]]; then
  verdict "W1 the hook makes no syscall beyond the options: ${SYS_shim} syscalls per connect vs the floor's ${SYS_floor5}" "$(le "$SYS_shim" "$SYS_floor5")"
fi
# shellcheck disable=SC2154
verdict "W2 ratio <= 1.01: in one process the hooked socket()+close() costs at worst $W2_WORST x the raw syscall; per process UDP $W2_udp_PP, AF_UNIX $W2_unix_PP" \
        "$(le "$W2_WORST" 1.01)"
W3_VS_EMPTY=$(calc %.3f "${W3R[shim]}/${W3R[empty]}")
verdict "W3 within 3% of preloading an empty library: $W3_VS_EMPTY (shim ${W3R[shim]}, empty ${W3R[empty]}, libkeepalive0 ${W3R[libkeepalive]} x no preload; page faults per start ${W3F[none]} / ${W3F[empty]} / ${W3F[shim]}, syscalls ${NSYS[none]} / ${NSYS[empty]} / ${NSYS[shim]}, relocations ${LDREL[none]} / ${LDREL[empty]} / ${LDREL[shim]} for none / empty / shim)" \
        "$(le "$W3_VS_EMPTY" 1.03)"
echo "  - what the shim's start does beyond the empty library's: syscalls $W3_EXTRA; NEEDED $NEEDED; stack +$STACK_KIB KiB" >>"$VERDICTS"
[[ -z $W3_MODEL ]] || echo "  - C libraries imitating only those traits (tests/bench/ctor_model.c) cost, vs the empty library: ${W3_MODEL%; } (keepalive-shim: $W3_VS_EMPTY x)" >>"$VERDICTS"
W4_D=$(calc %.0f "${W4M[shim]}-${W4M[none]}")
verdict "W4 peak RSS delta <= 256 KiB: $W4_D KiB (median VmHWM; it moves by tens of KiB from run to run with address-space layout: spread $(spread "$B/w4.shim.hwm_kb")); the stable part, private memory (RssAnon), is $(calc %+.0f "${W4A[shim]}-${W4A[none]}") KiB, of which the stack $(calc %+.0f "${W4S[shim]}-${W4S[none]}") KiB (vs the empty library: $(calc %+.0f "${W4A[shim]}-${W4A[empty]}") and $(calc %+.0f "${W4S[shim]}-${W4S[empty]}") KiB)" "$(le "$W4_D" 256)"
verdict "W4 stripped library <= 300 KiB: $(calc %.1f "$SSIZE/1024") KiB" "$(le "$SSIZE" $((300 * 1024)))"
W5_PER=$(calc %.2f "(${W5A[shim]}-${W5A[none]})*1024/$span")
W5_HEAP=$(median "$B/w5.shim.heap")
verdict "W5 no per-connection heap growth in the shim: malloc heap +$W5_HEAP B over $W5_N connections; the library imports no allocator (${ALLOC:-none of malloc/calloc/realloc/mmap/brk}); RssAnon grows $W5_PER B per connection more than without the shim (its fixed 8-byte-per-descriptor table, 512 KiB at most: the pages of the descriptors in use)" \
        "$([[ $(le "$W5_HEAP" 0) == 1 && -z $ALLOC ]] && le "$W5_PER" 10 || echo 0)"

cat "$B/t1.md" "$B/t3.md" "$B/t4.md" "$B/t5.md" >"$B/table.md"
TABLE=$B/table.md

# --- report --------------------------------------------------------------------------------------
MACHINE="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; $(uname -srm); $(ldd --version | head -1 | sed 's/.*) //;s/^/glibc /'); $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src config build.rs Cargo.toml Cargo.lock 2>/dev/null || echo " with uncommitted changes")
LIB_ID="$(stat -c %s "$SHIM") bytes, sha256 $(sha256sum "$SHIM" | cut -c1-16), built $LIB_BUILT"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "== results ($DATE; $MACHINE; library $LIB_ID; source tree $REV; load average at the end: $LOAD)"
echo
cat "$TABLE"
echo
cat "$VERDICTS"
echo
echo "== command lines ($B is a temporary directory; each line ran once per round)"
cat "$CMDS"

if ((QUICK)); then
  echo
  echo "(--quick: smoke run, BENCHMARKS.md not written)"
  exit 0
fi

strip_tmp() { sed "s|$B|\$B|g"; }
{
  cat <<EOF
# Benchmarks

Written by \`scripts/bench.sh\` (reproduce with \`scripts/bench.sh\` as root on
Debian/Ubuntu; \`scripts/bench.sh --quick\` is a smoke run). The targets (last
section) are the overhead budget the library is held to. The C programs are
in \`tests/bench/\`.

- **Date:** $DATE
- **Machine:** $MACHINE
- **Library:** \`$(realpath --relative-to="$ROOT" "$SRC_LIB" 2>/dev/null || echo "$SRC_LIB")\`, $LIB_ID; source tree at $REV
- **Load:** a shared machine; load average $LOAD at the end of the run

Method: every variant of a workload runs in the same run, interleaved round
by round in a rotating order; each process measures in blocks and reports
its median block; the table gives the median over rounds ($W1_ROUNDS rounds
for W1, $W2_ROUNDS for W2, $W3_ROUNDS x $W3_BLOCK starts for W3), the spread
of the per-round values (half the interquartile range) and, as the ratio,
the median over rounds of the ratio to the no-preload run of the same round.
On this shared 2-core VM the speed of the loopback path drifts between ~13
and ~24 µs per connect over tens of milliseconds, whatever is preloaded, so
per-process numbers swing by ±5-20% (the spread column), and the steady
numbers for W1 and W2 are the in-process ones:
one process alternates blocks of hooked libc calls with blocks of the same
work done with raw \`syscall()\`s, and the median of the per-cycle
differences is the hook's own cost. A listener made with raw syscalls and
\`SO_LINGER {1, 0}\` (inherited by accepted sockets, which are closed first)
keeps TIME_WAIT out of the loop. Every variant proves it did its job: the
last socket's \`SO_KEEPALIVE\`, \`TCP_KEEPCNT\` and \`TCP_USER_TIMEOUT\` are
checked. libkeepalive0 gets \`KEEPIDLE=60 KEEPINTVL=10 KEEPCNT=6\`, the shim's
defaults; it sets 4 options, like the shim's defaults (the user timeout is
opt-in); the 5-option rows ask for \`KEEPALIVE_SHIM_USER_TIMEOUT=auto\`.
Beyond the options, the shim makes one \`fstat()\` at \`socket()\` and one
at \`connect()\` of a TCP socket: each slot of its descriptor table holds
the socket's inode, checked before the slot is trusted, because a
descriptor number can change sockets without any hooked call
(\`close_range()\`, \`dup2()\`, libc's own closes).

## Results

EOF
  strip_tmp <"$TABLE"
  cat <<EOF

## Against the targets

EOF
  cat "$VERDICTS"
  cat <<'EOF'

## Interpretation

- **W1, W2.** The in-process rows isolate the hook: hooked libc calls minus
  the same work done with raw syscalls, in the same process, block by block.
  The floor (the 4-5 setsockopt calls themselves, see the "raw setsockopt
  cost" note) is what no preload can remove. libkeepalive0's hook calls
  `getenv` once per option and `atoi` on every TCP socket; keepalive-shim
  reads its configuration once, at load. Sockets the shim leaves alone (UDP,
  AF_UNIX) should cost one indirect call and an atomic store. The
  per-process rows are the same comparison across processes, with the
  spread shown.
- **What the identity checks cost.** A descriptor number can change
  sockets without any hooked call (`close_range()`, `dup2()` onto it,
  libc's own closes, raw syscalls), and a slot trusted without a check then
  configured nothing and logged options the socket did not have. Each slot
  now holds the socket's inode, compared with one `fstat()` before a hook
  trusts it: one at `socket()` (to record it), one at `connect()`, one of
  the listener at `accept()`. On this VM a syscall costs ~250-300 ns, so
  the W1 loop (client and server in one process) pays ~0.8 µs, 3.5% of a
  loopback connect and the whole difference from the earlier 1.005x; an
  accepted connection that only inherits the listener's options makes no
  syscall of its own. W2 pays ~30 ns more than before for the extra checks
  on every `socket()`/`close()` (no syscall). W3 pays 3-4 `fstat()`s per
  process start, the check of fds 0-2 for connections handed over by inetd
  or systemd, the price of configuring them. W5: the slot grew from 2 to 8
  bytes.
- **W3.** Every exec of a preloaded program pays for the loader mapping and
  relocating the library, and for its constructor. The W3 rows count, per
  start, the page faults (several µs each in this VM), syscalls and
  relocations, against the empty library; the W3 verdict lists the syscalls
  and paths the shim adds. The `model:` rows are C libraries that do nothing
  but imitate one start-up trait of the shim each (tests/bench/ctor_model.c:
  an extra `NEEDED` library, the constructor's stack use measured in W4, a
  file opened at load), and all of them together: how close "all of" comes
  to keepalive-shim shows how much of the gap these traits explain.
- **W4, W5.** Peak RSS of a small program, and the memory of one process
  holding many connections: the heap (mallinfo2) and RssAnon growth per
  connection show whether anything of the shim grows with connections; the
  kernel's socket memory is the same with and without a preload.

## Command lines

`$B` is the temporary directory the script compiles into; `$SHIM` there is
a copy of the library taken at the start of the run.

```
EOF
  strip_tmp <"$CMDS"
  echo '```'
} >"$ROOT/BENCHMARKS.md"
echo
echo "== wrote $ROOT/BENCHMARKS.md"

# Running processes (`status`, `apply`): their own script adds their section.
if ((QUICK)); then scripts/bench-live.sh --quick; else scripts/bench-live.sh; fi
# The hooks on calls every program makes (getsockopt, sendto, sendmsg, dlopen).
if ((QUICK)); then scripts/bench-hooks.sh --quick; else scripts/bench-hooks.sh; fi
# `attach` (BPF on a cgroup): its own script adds its section too.
if ((QUICK)); then scripts/bench-attach.sh --quick; else scripts/bench-attach.sh; fi
