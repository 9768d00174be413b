#!/usr/bin/env bash
# Runs a measurement on a machine that is also building: `benches/quiet.sh CMD...` runs CMD
# at nice -20 while every other thread is held at nice 19 (re-checked twice a second, so
# new compiler processes are caught), with the kernel's per-session autogroups off (with
# them on, nice only orders threads within one session). Both are restored afterwards.
# Root only. It quiets the CPUs, not the disk: a benchmark that waits on fsync still
# shares the disk with whatever else writes.
set -u
[ "$(id -u)" = 0 ] || { echo "benches/quiet.sh needs root" >&2; exit 2; }
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
BEFORE=$(cat "$AUTOGROUP" 2>/dev/null || echo)
[ -n "$BEFORE" ] && echo 0 >"$AUTOGROUP"
nice -n -20 "$@" &
ROOT=$!
LIST=$(mktemp)
(
  while kill -0 "$ROOT" 2>/dev/null; do
    for t in $(ps -eLo tid=,ni= | awk '$2 >= 0 && $2 < 19 {print $1}'); do
      renice -n 19 -p "$t" >/dev/null 2>&1 && echo "$t" >>"$LIST"
    done
    sleep 0.5
  done
) &
WATCH=$!
wait "$ROOT"
RC=$?
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
for t in $(sort -u "$LIST"); do renice -n 0 -p "$t" >/dev/null 2>&1; done
rm -f "$LIST"
[ -n "$BEFORE" ] && echo "$BEFORE" >"$AUTOGROUP"
exit "$RC"
