# Sourced by the interop tests: runs interop_server as this script's child.
#
# start_interop_server CMD [ARGS...]
#   Starts CMD in the current directory with its stdin on a fifo that this
#   script holds open (the server exits at EOF), stdout in server.out and
#   stderr in server.err; sets server_pid; stops the server by pid on exit;
#   and waits at most 10 s for the server's "ready" line.

stop_interop_server() {
  exec 3>&-
  kill -9 "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
}

start_interop_server() {
  rm -f server.stdin
  mkfifo server.stdin
  "$@" < server.stdin > server.out 2> server.err &
  server_pid=$!
  exec 3> server.stdin
  trap stop_interop_server EXIT
  for _ in $(seq 1 100); do  # At most 10 s.
    if grep -q '^ready$' server.out 2> /dev/null; then return 0; fi
    if ! kill -0 "$server_pid" 2> /dev/null; then
      echo "server exited:" >&2; cat server.err >&2; exit 1
    fi
    sleep 0.1
  done
  grep -q '^ready$' server.out || { echo "server never ready" >&2; exit 1; }
}
