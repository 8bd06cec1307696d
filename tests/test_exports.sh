#!/bin/sh
# test_exports.sh - the installed library exports only public vg_ symbols,
# and every function declared in volga.h is exported.
set -eu
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
lib="$top_builddir/.libs/libvolga.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: no shared library at $lib"
    exit 77
fi
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort)
bad=$(printf '%s\n' "$exported" | grep -v '^vg_[a-z]' || true)
if [ -n "$bad" ]; then
    echo "FAIL: symbols outside the vg_ namespace are exported:"
    printf '%s\n' "$bad"
    exit 1
fi
internal=$(printf '%s\n' "$exported" | grep '^vg__' || true)
if [ -n "$internal" ]; then
    echo "FAIL: internal vg__ symbols are exported: $internal"
    exit 1
fi
declared=$(sed -n 's/^[a-z_ ]*[ *]\(vg_[a-z_]*\)(.*/\1/p' "$srcdir/include/volga.h" | sort -u)
missing=""
for f in $declared; do
    printf '%s\n' "$exported" | grep -qx "$f" || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "FAIL: declared in volga.h but not exported:$missing"
    exit 1
fi
echo "PASS: $(printf '%s\n' "$exported" | wc -l) exported symbols, all public"

# libvolga-curl, when built: only vg_curl_ symbols, every one its header
# declares.
curl_lib="$top_builddir/.libs/libvolga-curl.so"
if [ -f "$curl_lib" ]; then
    cexported=$(nm -D --defined-only "$curl_lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort)
    bad=$(printf '%s\n' "$cexported" | grep -v '^vg_curl_[a-z]' || true)
    if [ -n "$bad" ]; then
        echo "FAIL: libvolga-curl exports symbols outside vg_curl_:"
        printf '%s\n' "$bad"
        exit 1
    fi
    declared=$(sed -n 's/^[A-Za-z_ ]*[ *]\(vg_curl_[a-z_]*\)(.*/\1/p' "$srcdir/curl/volga-curl.h" | sort -u)
    missing=""
    for f in $declared; do
        printf '%s\n' "$cexported" | grep -qx "$f" || missing="$missing $f"
    done
    if [ -n "$missing" ]; then
        echo "FAIL: declared in volga-curl.h but not exported:$missing"
        exit 1
    fi
    [ -n "$declared" ] || { echo "FAIL: no function found in volga-curl.h"; exit 1; }
    echo "PASS: libvolga-curl exports $(printf '%s\n' "$cexported" | wc -l) symbols, all vg_curl_"
fi
