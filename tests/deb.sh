#!/usr/bin/env bash
# The Debian package, end to end on this machine (root needed): build it
# (packaging/build-deb.sh --profile dev, reusing the test build), `dpkg -i`,
# set up a production instance as README "Running in production" says
# (migrate, key generate, client create, config check, as the ficha user
# with the packaged config), run the unit's ExecStart the way systemd would
# (its User=, WorkingDirectory=, UMask=, no new privileges, no capabilities,
# an empty environment), get a token with curl, read it back from the audit
# trail, check the completions, man pages and `systemd-analyze verify`, then
# `dpkg -r` and `dpkg -P`. Whatever happens, the trap removes the package,
# the server and the user it created.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/deb.sh: skipped, dpkg -i needs root" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
# The purge at the end deletes /etc/ficha and /var/lib/ficha: never run
# over a real installation.
if dpkg-query -W -f '${Status}' ficha 2>/dev/null | grep -q 'ok installed\|config-files'; then
  echo "tests/deb.sh: a ficha package is installed here; refusing to replace it" >&2
  exit 1
fi
for d in /etc/ficha /var/lib/ficha; do
  if [ -e "$d" ]; then
    echo "tests/deb.sh: $d exists; refusing to run over it" >&2
    exit 1
  fi
done

user_existed=no
getent passwd ficha >/dev/null && user_existed=yes
work=$(mktemp -d)
server_pid=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null
  fi
  if [ $rc -ne 0 ] && [ -f "$work/serve.log" ]; then
    echo "--- ficha serve's output:" >&2
    tail -n 40 "$work/serve.log" >&2
  fi
  if dpkg-query -W ficha >/dev/null 2>&1; then
    dpkg -P ficha >/dev/null 2>&1
  fi
  if [ "$user_existed" = no ] && getent passwd ficha >/dev/null; then
    userdel ficha
    getent group ficha >/dev/null && groupdel ficha
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

fail() {
  echo "tests/deb.sh: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

step "build the package"
deb=$(packaging/build-deb.sh --profile dev | tail -n1)
[ -f "$deb" ] || fail "packaging/build-deb.sh made no .deb ($deb)"

step "dpkg -i $deb"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
[ -x /usr/bin/ficha ] || fail "/usr/bin/ficha not installed"
getent passwd ficha >/dev/null || fail "postinst created no ficha user"
[ "$(stat -c '%U:%G %a' /etc/ficha/ficha.toml)" = "root:ficha 640" ] \
  || fail "/etc/ficha/ficha.toml is $(stat -c '%U:%G %a' /etc/ficha/ficha.toml), not root:ficha 640"
[ "$(stat -c '%U:%G %a' /var/lib/ficha)" = "ficha:ficha 750" ] \
  || fail "/var/lib/ficha is $(stat -c '%U:%G %a' /var/lib/ficha)"
grep -qx /etc/ficha/ficha.toml /var/lib/dpkg/info/ficha.conffiles || fail "ficha.toml is not a conffile"

unit=/usr/lib/systemd/system/ficha.service
[ -f "$unit" ] || fail "$unit not installed"
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n1; }
for opt in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes CapabilityBoundingSet= StateDirectory=ficha; do
  grep -qx "$opt" "$unit" || fail "$unit lacks $opt"
done

if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify"
  # Without a running systemd it still parses every directive and checks
  # that ExecStart's binary exists; any complaint about the unit fails.
  systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || true
  if grep -i 'ficha' "$work/verify.log"; then
    fail "systemd-analyze verify complains about the unit"
  fi
else
  echo "(no systemd-analyze here: unit not verified)"
fi

step "completions and man pages"
bash -n /usr/share/bash-completion/completions/ficha || fail "bash completion does not parse"
# The bash completion really completes: `ficha cl<TAB>` offers `client`,
# `ficha key <TAB>` offers `rotate`.
complete_bash() {
  bash -c 'source /usr/share/bash-completion/completions/ficha
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _ficha ficha "${COMP_WORDS[$COMP_CWORD]}" "${COMP_WORDS[$COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
# (Captured first: `grep -q` closing the pipe early would fail it under pipefail.)
offered=$(complete_bash ficha cl)
grep -qx client <<<"$offered" || fail "bash completion of 'ficha cl' lacks client"
offered=$(complete_bash ficha key '')
grep -qx rotate <<<"$offered" || fail "bash completion of 'ficha key ' lacks rotate"
grep -q '^#compdef ficha' /usr/share/zsh/vendor-completions/_ficha || fail "zsh completion missing"
grep -q "complete -c ficha" /usr/share/fish/vendor_completions.d/ficha.fish || fail "fish completion missing"
if command -v zsh >/dev/null; then zsh -n /usr/share/zsh/vendor-completions/_ficha || fail "zsh completion does not parse"; fi
if command -v fish >/dev/null; then fish -n /usr/share/fish/vendor_completions.d/ficha.fish || fail "fish completion does not parse"; fi
zcat /usr/share/man/man1/ficha.1.gz >"$work/ficha.1"
grep -q '^\.TH ficha 1' "$work/ficha.1" || fail "ficha.1.gz is no man page"
page=$(MANWIDTH=100 man -l /usr/share/man/man1/ficha-serve.1.gz 2>/dev/null)
grep -q -- '--trusted-proxies' <<<"$page" || fail "man ficha-serve does not render --trusted-proxies"
page=$(MANWIDTH=100 man -l /usr/share/man/man1/ficha-config-check.1.gz 2>/dev/null)
grep -q 'ficha-config-check' <<<"$page" || fail "man ficha-config-check does not render"

step "configure as an operator: port, migrate, key, client"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^bind = .*/bind = \"127.0.0.1:$port\"/" /etc/ficha/ficha.toml
grep -qx "bind = \"127.0.0.1:$port\"" /etc/ficha/ficha.toml || fail "the packaged config has no bind line"
as_ficha() { runuser -u ficha -- /usr/bin/ficha --config /etc/ficha/ficha.toml "$@"; }
as_ficha migrate
as_ficha key generate >/dev/null
as_ficha --json client create --id deb-test --scopes "transaction confirmation" >"$work/client.json"
secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <"$work/client.json")
[ -n "$secret" ] || fail "client create printed no secret"
[ "$(stat -c '%U %a' /var/lib/ficha/ficha.db)" = "ficha 600" ] \
  || fail "the database is $(stat -c '%U %a' /var/lib/ficha/ficha.db), not the ficha user's, 0600"
for f in /var/lib/ficha/keys/*.pem; do
  [ "$(stat -c '%U %a' "$f")" = "ficha 600" ] || fail "$f is $(stat -c '%U %a' "$f")"
done

step "ficha config check"
as_ficha config check >"$work/check.log" 2>&1 || { cat "$work/check.log" >&2; fail "config check"; }
grep -q '^ok' "$work/check.log" || fail "config check printed no ok line"

step "ExecStart as systemd would run it"
exec_start=$(unit_value ExecStart)
[ "$exec_start" = "/usr/bin/ficha --config /etc/ficha/ficha.toml serve" ] || fail "unexpected ExecStart: $exec_start"
user=$(unit_value User)
group=$(unit_value Group)
wd=$(unit_value WorkingDirectory)
mask=$(unit_value UMask)
nofile=$(unit_value LimitNOFILE)
# ExecStart has no quoting, so word splitting is its parsing.
# shellcheck disable=SC2086
(
  cd "$wd"
  umask "$mask"
  # systemd raises the hard limit too; a container may cap it lower.
  ulimit -n "$nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --reuid="$user" --regid="$group" --init-groups \
    --no-new-privs --bounding-set=-all --inh-caps=-all -- $exec_start
) >"$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "ficha serve exited"
  sleep 0.1
done
curl -sf "$base/health" >/dev/null || fail "ficha serve did not answer /health on $base"
[ "$(stat -c '%U' "/proc/$server_pid")" = ficha ] || fail "the server does not run as ficha"

step "a token with curl"
curl -sf -u "deb-test:$secret" -d grant_type=client_credentials -d scope=transaction \
  "$base/oauth2/token" >"$work/token.json" || fail "no token from $base/oauth2/token"
token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <"$work/token.json")
as_ficha token verify "$token" >"$work/claims.json" || fail "ficha token verify refused the token"
jti=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["jti"])' <"$work/claims.json")
curl -sf "$base/metrics" >"$work/metrics.txt" || fail "no /metrics"
grep -q '^ficha_' "$work/metrics.txt" || fail "/metrics has no ficha_ series"
# The audit trail is written in batches, at most once a second.
found=no
for _ in $(seq 1 30); do
  rows=$(as_ficha audit list --jti "$jti")
  if grep -q deb-test <<<"$rows"; then found=yes; break; fi
  sleep 0.2
done
[ "$found" = yes ] || fail "the token's jti is not in ficha audit list"

kill "$server_pid"
wait "$server_pid" || fail "ficha serve did not exit cleanly on SIGTERM"
server_pid=

step "dpkg -r, dpkg -P"
dpkg -r ficha >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r"; }
[ ! -e /usr/bin/ficha ] || fail "/usr/bin/ficha is still there after dpkg -r"
[ -f /etc/ficha/ficha.toml ] || fail "dpkg -r removed the conffile (only purge should)"
[ -f /var/lib/ficha/ficha.db ] || fail "dpkg -r removed the database (only purge should)"
dpkg -P ficha >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -P"; }
[ ! -e /etc/ficha ] || fail "/etc/ficha is still there after dpkg -P"
[ ! -e /var/lib/ficha ] || fail "/var/lib/ficha is still there after dpkg -P"
! dpkg-statoverride --list /etc/ficha/ficha.toml >/dev/null || fail "dpkg -P left the stat override"

echo "tests/deb.sh: ok"
