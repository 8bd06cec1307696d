#!/usr/bin/env bash
# dev.sh - the two set-up commands of libvolga on a fresh Debian machine.
#
#   ./dev.sh hello [ADDR]  build everything, then start samples/hello on ADDR
#                          (default localhost:7878)
#   ./dev.sh check   build everything and run the whole test suite
#   ./dev.sh bench   build everything and run bench/run-suite (about 6 min)
#
# Run as root, each installs the Debian packages it is missing first
# (apt-get update once, then a non-interactive install). As another user it
# names the missing packages and stops.
set -euo pipefail
cd "$(dirname "$0")"

# Packages to build the library and samples, and to run the tests
# (doxygen: make doc; libunistring-dev: `pkg-config --static` of
# libmicrohttpd names -lunistring, through GnuTLS, and tests/install-check
# links a static consumer with it; postgresql and libpq-dev: libvolga-pq and
# its tests, which start a private server of their own).
BUILD_PKGS=(build-essential autoconf automake libtool pkg-config
            libmicrohttpd-dev libjansson-dev nettle-dev media-types zlib1g-dev
            libbrotli-dev libzstd-dev libgnutls28-dev)
TEST_PKGS=(check libcurl4-openssl-dev curl clang libclang-rt-dev valgrind python3 python3-requests python3-prometheus-client
           doxygen libunistring-dev nginx chromium openssl
           postgresql libpq-dev)
# The load generator, and the peers bench/run-suite compares libvolga with
# (optional: the suite skips a peer that is missing).
# Not libulfius-dev: it depends on libcurl4-gnutls-dev, which would remove
# the tests' libcurl4-openssl-dev; bench/run-suite fetches its headers.
BENCH_PKGS=(wrk curl iproute2)
PEER_PKGS=(libulfius2.7 liborcania-dev libyder-dev zlib1g-dev golang-go nodejs
           golang-github-lib-pq-dev)

log() { printf '==> %s\n' "$*"; }

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: missing Debian packages: ${missing[*]}" >&2
        echo "dev.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Configures and builds in build/ with warnings as errors. build/ is
# configured again whenever what configure would find has changed (a package
# installed since, e.g. Check by `dev.sh check` after `dev.sh hello`):
# tests/configure-dir keeps the fingerprint.
build() {
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
        log "autoreconf"
        mkdir -p m4 && autoreconf -fi
    fi
    tests/configure-dir build --enable-werror
    log "make"
    make -C build -j"$(nproc)"
}

case "${1:-}" in
hello)
    ensure_packages "${BUILD_PKGS[@]}"
    build
    addr=${2:-localhost:7878}
    log "starting samples/hello on $addr (Ctrl-C stops it)"
    exec ./build/samples/hello "$addr"
    ;;
check)
    ensure_packages "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
    exec ./tests/run-all
    ;;
bench)
    ensure_packages "${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}"
    if [ "$(id -u)" -eq 0 ]; then ensure_packages "${PEER_PKGS[@]}"; fi
    build
    BUILD=build exec bench/run-suite
    ;;
*)
    echo "usage: $0 hello [ADDR]|check|bench" >&2
    exit 2
    ;;
esac
