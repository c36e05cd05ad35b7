#!/usr/bin/env bash
# Build the mbedTLS EC-JPAKE peer used by tests/interop/test_mbedtls_ecjpake.py.
#
# Debian's binary libmbedtls-dev is built without MBEDTLS_ECJPAKE_C, so this fetches Debian's
# mbedtls *source* package, enables EC-JPAKE, builds only the static libmbedcrypto.a and links
# our own harness (ecjpake_peer.c) against it. Everything lands in a cache directory:
#   ${FWSIM_CACHE:-~/.cache/fwsim}/mbedtls/{*.orig.tar.gz, src/, ecjpake_peer}
# Idempotent: each step is skipped when its output is already there. Needs apt (Debian) and a
# C compiler; root or sudo for enabling deb-src entries and `apt-get update`.
# Prints the harness path on its last line; the test finds it there (or via
# FWSIM_MBEDTLS_HARNESS).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${FWSIM_CACHE:-$HOME/.cache/fwsim}/mbedtls"
src="$cache/src"
harness="$cache/ecjpake_peer"
jobs="${FWSIM_BUILD_JOBS:-2}"

log() { echo "[mbedtls-build] $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) for: $*"
        exit 1
    fi
}

enable_deb_src() {
    if grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return
    fi
    local target=/etc/apt/sources.list.d/fwsim-deb-src
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        log "enabling deb-src entries in $target.sources"
        sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' \
            /etc/apt/sources.list.d/debian.sources | as_root tee "$target.sources" >/dev/null
    elif [ -f /etc/apt/sources.list ]; then
        log "enabling deb-src entries in $target.list"
        sed -nE 's/^deb[[:space:]]/deb-src /p' /etc/apt/sources.list \
            | as_root tee "$target.list" >/dev/null
    else
        log "no Debian apt sources found; cannot fetch the mbedtls source package"
        exit 1
    fi
}

fetch_source() {
    if compgen -G "$cache/mbedtls_*.orig.tar.*" >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || { log "apt-get not found"; exit 1; }
    enable_deb_src
    log "apt-get update"
    as_root apt-get update -qq
    log "apt-get source --download-only mbedtls"
    (cd "$cache" && apt-get source --download-only mbedtls) >&2
}

unpack() {
    if [ -f "$src/.unpacked" ]; then
        return
    fi
    local archive
    archive="$(compgen -G "$cache/mbedtls_*.orig.tar.*" | head -n 1)"
    log "unpacking $(basename "$archive")"
    rm -rf "$src"
    mkdir -p "$src"
    tar -xf "$archive" -C "$src" --strip-components=1
    touch "$src/.unpacked"
}

build_library() {
    # config.py edits include/mbedtls/config.h in place; setting an already set option is a no-op.
    (cd "$src" && python3 scripts/config.py set MBEDTLS_ECJPAKE_C)
    log "make -C library -j$jobs libmbedcrypto.a"
    make -s -C "$src/library" -j"$jobs" libmbedcrypto.a >&2
}

build_harness() {
    if [ -x "$harness" ] && [ "$harness" -nt "$here/ecjpake_peer.c" ] \
        && [ "$harness" -nt "$src/library/libmbedcrypto.a" ]; then
        return
    fi
    log "compiling $(basename "$harness")"
    "${CC:-cc}" -O2 -Wall -Wextra -I"$src/include" "$here/ecjpake_peer.c" \
        "$src/library/libmbedcrypto.a" -o "$harness"
}

mkdir -p "$cache"
fetch_source
unpack
build_library
build_harness
echo "$harness"
