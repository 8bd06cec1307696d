#!/bin/sh
# test_exports_pq.sh - libvolga-pq exports only its vg_pq_ functions, and
# every function declared in volga-pq.h is exported.
set -eu
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
lib="$top_builddir/.libs/libvolga-pq.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: no shared library at $lib"
    exit 77
fi
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort)
bad=$(printf '%s\n' "$exported" | grep -v '^vg_pq_[a-z]' || true)
if [ -n "$bad" ]; then
    echo "FAIL: libvolga-pq exports symbols outside vg_pq_:"
    printf '%s\n' "$bad"
    exit 1
fi
declared=$(sed -n 's/^[A-Za-z_ ]*[ *]\(vg_pq_[a-z_]*\)(.*/\1/p' "$srcdir/pq/volga-pq.h" | sort -u)
[ -n "$declared" ] || { echo "FAIL: no declarations found in volga-pq.h"; exit 1; }
missing=""
for f in $declared; do
    printf '%s\n' "$exported" | grep -qx "$f" || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "FAIL: declared in volga-pq.h but not exported:$missing"
    exit 1
fi
echo "PASS: $(printf '%s\n' "$exported" | wc -l) exported symbols, all vg_pq_"
