# What the example tests share (source it from an sh_test that lists
# //examples/common:test_lib.sh in its data). Each test runs one server with a
# local port and a gRPC listener on loopback, in a directory of its own,
# and stops it by its pid.
#
#   example_setup <service> <server name> <local port name>
#       makes $work and writes $work/server.textproto, $work/local.textproto
#       and $work/grpc.textproto (a free loopback port for gRPC);
#   example_start <server binary>
#       starts it (its pid in $pid, its output in $work/server.log) and
#       waits for its "ready" line;
#   example_stop
#       stops it with SIGTERM and waits for it.
# The EXIT trap kills a server still running and removes $work.

work=""
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; [ -n "$work" ] && rm -rf "$work"' EXIT

example_setup() {
  local service=$1 server=$2 local_port=$3
  work=$(mktemp -d /tmp/lpc-example.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/server.textproto" <<CFG
server { name: "$server" local_port: "$local_port" runtime_dir: "$work" grpc_address: "127.0.0.1:$port" }
CFG
  cat > "$work/local.textproto" <<CFG
endpoint { service: "$service" target: "local:$local_port" local { runtime_dir: "$work" } }
CFG
  cat > "$work/grpc.textproto" <<CFG
endpoint { service: "$service" target: "grpc:127.0.0.1:$port" }
CFG
}

example_start() {
  "$1" --lpc_config="$work/server.textproto" > "$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q ready "$work/server.log" && break; sleep 0.05; done
  grep -q ready "$work/server.log"
}

example_stop() {
  kill -TERM "$pid"
  wait "$pid"
  pid=""
}
