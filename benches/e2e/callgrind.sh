#!/bin/sh
# The daemon under callgrind, for instruction counts that a busy, shared machine does not move
# (the CPU-time figures do). Used as the bench's daemon binary:
#
#   MOAUTH_BENCH_BIN=benches/e2e/callgrind.sh MOAUTH_BENCH_PARTS=ingest MOAUTH_BENCH_SMSCS=sim \
#   MOAUTH_BENCH_RUNS=1 MOAUTH_BENCH_WINDOWS=100 MOAUTH_BENCH_NEW_USERS=5 \
#   MOAUTH_BENCH_LOGINS=3000 cargo bench --bench e2e
#
# CALLGRIND_BIN is the moauth binary to run (default: the release build). The profile is
# written when the daemon exits, to target/callgrind.out.PID; BENCHMARKS.md ("Profile") says
# how instructions per MO are read from it.
exec valgrind --tool=callgrind --callgrind-out-file=target/callgrind.out.%p \
    "${CALLGRIND_BIN:-target/release/moauth}" "$@"
