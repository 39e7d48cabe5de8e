# Sourced by the peer-suite scripts: starts the broker they run against and sets $addr (bootstrap servers)
# and $logs (where its logs are). RUNNEL_TARGET=cluster gives three brokers on PostgreSQL + SeaweedFS
# (scripts/serve-cluster); anything else one `runnel serve`. Arguments are KEY=VALUE --set pairs.
# The broker stops when the sourcing script exits.
start_peer_target() {
  local work bin
  work="$(mktemp -d /tmp/runnel-peer.XXXXXX)"
  bin="${RUNNEL_BIN:-$repo/target/release/runnel}"
  if [ "${RUNNEL_TARGET:-}" = cluster ]; then
    RUNNEL_BIN="$bin" "$repo/scripts/serve-cluster" "$work" "$@" > "$work/stdout" 2> "$work/stderr" &
  else
    local sets=()
    for pair in "$@"; do sets+=(--set "$pair"); done
    "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log warn "${sets[@]}" \
      > "$work/stdout" 2> "$work/broker.log" &
  fi
  peer_pid=$!
  trap 'kill $peer_pid 2>/dev/null; wait $peer_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1200); do
    grep -q "listening on" "$work/stdout" 2>/dev/null && break
    kill -0 $peer_pid 2>/dev/null || { cat "$work"/stderr "$work"/broker.log 2>/dev/null >&2; return 1; }
    sleep 0.1
  done
  addr="$(sed -n 's/^runnel listening on //p' "$work/stdout" | head -1)"
  [ -n "$addr" ] || { echo "the broker did not start (see $work)" >&2; return 1; }
  logs="$work"
  echo "runnel on $addr (${RUNNEL_TARGET:-standalone}; logs in $work)"
}
