#!/usr/bin/env bash
# Builds ficha's Debian package: the binary, then the shell completions and
# man pages it generates from its own clap definition, then `cargo deb`
# (cargo-deb from crates.io) with [package.metadata.deb] of Cargo.toml.
#
#   packaging/build-deb.sh                 # release build, for users
#   packaging/build-deb.sh --profile dev   # reuse the test build (tests/deb.sh)
#
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --profile=*) profile="${1#--profile=}"; shift ;;
    *) echo "usage: $0 [--profile PROFILE]" >&2; exit 2 ;;
  esac
done

# The version tests/deb.sh and CI install; later ones may refuse --profile dev.
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q " $CARGO_DEB_VERSION\$"; then
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

cargo build --locked --profile "$profile" --bin ficha
case "$profile" in
  dev) bin=target/debug/ficha ;;
  *) bin="target/$profile/ficha" ;;
esac

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$bin" completions bash >"$assets/completions/ficha.bash"
"$bin" completions zsh >"$assets/completions/_ficha"
"$bin" completions fish >"$assets/completions/ficha.fish"
"$bin" man "$assets/man"

mkdir -p target/debian
# --no-build: the binary above is the one packaged. cargo-deb warns that a
# dev-profile package is unusual; tests/deb.sh wants exactly that, so that CI
# does not add a release build, and the warning is filtered out.
# A test package is compressed lightly: xz -9 of a 40 MB binary costs CI
# a minute for nothing.
fast=()
[ "$profile" = release ] || fast=(--fast)
log=target/debian/cargo-deb.log
if ! deb=$(cargo deb --locked --no-build --profile "$profile" "${fast[@]}" --output target/debian/ 2>"$log"); then
  cat "$log" >&2
  exit 1
fi
grep -v -e 'dev profile is not supported' -e 'To enable debug symbols' \
  -e 'Cargo also supports custom profiles' "$log" >&2 || true
# cargo-deb prints the package's path on stdout.
printf '%s\n' "$deb" | tail -n1
