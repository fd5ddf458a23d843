#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, combined broker and controller) on
# 127.0.0.1 for development and tests, run straight from Maven Central jars because
# this project can rely on neither Docker nor the Apache download site.
#
#   deploy/local/kafka.sh fetch       resolve the broker jars (cached, keyed on the pom)
#   deploy/local/kafka.sh start       start the broker if needed; print its bootstrap
#   deploy/local/kafka.sh stop        stop the broker this state dir started
#   deploy/local/kafka.sh kill        SIGKILL the broker (a crash), keeping its data
#   deploy/local/kafka.sh status      "running <bootstrap>" (exit 0), else "starting" or
#                                     "stopped" (exit 3)
#   deploy/local/kafka.sh bootstrap   print the bootstrap address of a running broker
#
# Environment:
#   ARBOR_KAFKA_DIR   state dir (default .local/kafka/run); one broker per state dir
#   KAFKA_PORT        broker listener port (default: a free one)
#   KAFKA_CONTROLLER_PORT
#                     controller listener port (default: a free one)
#   KAFKA_HEAP_OPTS   JVM heap flags (default -Xms256m -Xmx512m)
#   ARBOR_KAFKA_KEEP  1: "stop" keeps the data, and "start" restarts the broker the
#                     state dir already holds, on its previous ports, with its topics,
#                     records and committed offsets (fault-injection tests); without
#                     it every start is a fresh cluster and stop drops the data
#
# Only machine-readable values go to stdout; progress and errors go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
POM="$HERE/kafka/pom.xml"
LOG4J_CONFIG="$HERE/kafka/log4j2.properties"

CACHE_DIR="$REPO_ROOT/.local/kafka"
LIBS_DIR="$CACHE_DIR/libs"
STATE_DIR="${ARBOR_KAFKA_DIR:-$CACHE_DIR/run}"
PID_FILE="$STATE_DIR/kafka.pid"
# For other tools to read; written once the broker is ready.
BOOTSTRAP_FILE="$STATE_DIR/bootstrap"
CONFIG_FILE="$STATE_DIR/server.properties"
LOG_FILE="$STATE_DIR/kafka.log"
DATA_DIR="$STATE_DIR/data"

READY_LINE="Kafka Server started"
READY_TIMEOUT_SECONDS=120
STOP_TIMEOUT_SECONDS=30
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

say() { echo "kafka.sh: $*" >&2; }
die() { say "$*"; exit 1; }

show_log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    say "last lines of $LOG_FILE:"
    tail -n 40 "$LOG_FILE" >&2
  fi
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetch() {
  local marker="$LIBS_DIR/.pom.sha256" hash staging lock_fd
  hash="$(pom_hash)"
  if [[ -f "$marker" && "$(cat "$marker")" == "$hash" ]]; then
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  # Parallel test sessions may all find the cache cold; one downloads, the rest wait.
  exec {lock_fd}>"$CACHE_DIR/.fetch.lock"
  flock "$lock_fd"
  if [[ -f "$marker" && "$(cat "$marker")" == "$hash" ]]; then
    exec {lock_fd}>&-
    return 0
  fi

  say "resolving broker jars from Maven Central into $LIBS_DIR"
  # Copy into a staging dir and swap it in whole, so an interrupted download is
  # never mistaken for a complete classpath.
  staging="$CACHE_DIR/libs.partial"
  rm -rf "$staging"
  # Debian's Maven 3.8 prints colour resets even in batch mode; they only clutter logs.
  (cd "$HERE/kafka" && mvn -B -q \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$staging") 2>&1 |
    sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2
  echo "$hash" >"$staging/.pom.sha256"
  rm -rf "$LIBS_DIR"
  mv "$staging" "$LIBS_DIR"
  exec {lock_fd}>&-
}

# The PID file alone is not trusted: after a reboot or a crash the number may belong
# to another process, and a zombie still answers kill -0.
broker_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONFIG_FILE" || return 1
  echo "$pid"
}

broker_port() {
  sed -n 's|^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$CONFIG_FILE"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The log line is written only once the broker is unfenced, which an open port
# alone does not prove; the port check guards against a stale log.
is_ready() {
  local port
  port="$(broker_port)"
  [[ -n "$port" ]] && grep -qF "$READY_LINE" "$LOG_FILE" 2>/dev/null &&
    port_open "$port"
}

wait_until_ready() {
  local pid="$1" deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
  until is_ready; do
    if ! broker_pid >/dev/null; then
      show_log_tail
      rm -f "$PID_FILE"
      die "broker (pid $pid) exited before it was ready"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "broker (pid $pid) not ready after ${READY_TIMEOUT_SECONDS}s; killed it"
    fi
    sleep 0.25
  done
}

# One start or stop at a time per state dir: parallel callers would otherwise race on
# the PID file and launch two brokers over one log dir.
lock_state_dir() {
  mkdir -p "$STATE_DIR"
  exec {STATE_LOCK_FD}>"$STATE_DIR/.lock"
  flock "$STATE_LOCK_FD"
}

free_ports() {
  # Both sockets stay bound until both numbers are read, so the two differ.
  python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
'
}

write_config() {
  local broker="127.0.0.1:$1" controller="127.0.0.1:$2"
  cat >"$CONFIG_FILE" <<EOF
# Written by deploy/local/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$controller
listeners=PLAINTEXT://$broker,CONTROLLER://$controller
advertised.listeners=PLAINTEXT://$broker,CONTROLLER://$controller
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# Topics are created on purpose (shared/ owns their names), never by a typo.
auto.create.topics.enable=false
num.partitions=3

# One broker: internal topics can only have one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests join groups and open transactions constantly: no 3 s join delay, and one
# partition instead of 50 to create on the first group join or InitProducerId.
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# The cleaner allocates this on the heap at start (default 128 MiB); with a 512 MiB
# heap that is a needless risk of OutOfMemoryError.
log.cleaner.dedupe.buffer.size=16777216
EOF
}

# A fresh cluster id in Kafka's own form (URL-safe base64 of a UUID, no padding, not
# starting with '-'); python3 saves a JVM start over StorageTool random-uuid.
new_cluster_id() {
  python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
'
}

start() {
  local pid ports broker_port controller_port cluster_id
  local -a heap_opts
  local -a log_opts=(
    "-Dlog4j2.configurationFile=$LOG4J_CONFIG" "-Dkafka.logs.dir=$STATE_DIR/logs"
  )
  lock_state_dir
  if pid="$(broker_pid)"; then
    # Usually ready already; still starting if an earlier caller gave up waiting.
    wait_until_ready "$pid"
    echo "127.0.0.1:$(broker_port)" | tee "$BOOTSTRAP_FILE"
    return 0
  fi
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"

  fetch
  read -r -a heap_opts <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  if keeping && [[ -f "$DATA_DIR/meta.properties" && -f "$CONFIG_FILE" ]]; then
    # The same cluster again: its config (ports included) and formatted log dir
    # stay; a fresh log keeps the old run's "started" line from passing for ready.
    broker_port="$(broker_port)"
    say "restarting the kept broker on 127.0.0.1:$broker_port"
    : >"$LOG_FILE"
  else
    ports="$(free_ports)"
    read -r broker_port controller_port <<<"$ports"
    broker_port="${KAFKA_PORT:-$broker_port}"
    controller_port="${KAFKA_CONTROLLER_PORT:-$controller_port}"
    write_config "$broker_port" "$controller_port"

    # Every start is a new single-use cluster: tests must not see old topics, and a
    # kept log dir would need the cluster id it was formatted with.
    rm -rf "$DATA_DIR"
    cluster_id="$(new_cluster_id)"
    # A one-second JVM: the quick JIT tier and serial GC cut about a third of it.
    "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${log_opts[@]}" \
      -cp "$LIBS_DIR/*" kafka.tools.StorageTool format \
      --standalone -t "$cluster_id" -c "$CONFIG_FILE" >"$LOG_FILE" 2>&1 ||
      { show_log_tail; die "formatting $DATA_DIR failed"; }
  fi

  say "starting broker on 127.0.0.1:$broker_port (log: $LOG_FILE)"
  # setsid and /dev/null stdin detach the JVM from the caller's terminal and pipes,
  # so a caller capturing our output is not held open by the broker; nor may the
  # broker inherit the state lock, or it would hold it for its whole life.
  setsid "$JAVA" "${heap_opts[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${log_opts[@]}" -cp "$LIBS_DIR/*" \
    kafka.Kafka "$CONFIG_FILE" </dev/null >>"$LOG_FILE" 2>&1 {STATE_LOCK_FD}>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"

  wait_until_ready "$pid"
  echo "127.0.0.1:$broker_port" | tee "$BOOTSTRAP_FILE"
}

stop() {
  local pid deadline
  [[ -d "$STATE_DIR" ]] && lock_state_dir
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
    say "not running"
    return 0
  fi
  # SIGTERM runs Kafka's shutdown hook: a controlled shutdown takes a few seconds.
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
  while broker_pid >/dev/null && ((SECONDS < deadline)); do
    sleep 0.25
  done
  if broker_pid >/dev/null; then
    say "broker (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT_SECONDS}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while broker_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    ! broker_pid >/dev/null || die "broker (pid $pid) survived SIGKILL"
  fi
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
  keeping || rm -rf "$DATA_DIR"
  say "stopped"
}

# A crash, not a shutdown: no controlled shutdown, no flush; the data stays so that
# "ARBOR_KAFKA_KEEP=1 start" can bring the same broker back.
kill_broker() {
  local pid deadline
  [[ -d "$STATE_DIR" ]] && lock_state_dir
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
    say "not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while broker_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  ! broker_pid >/dev/null || die "broker (pid $pid) survived SIGKILL"
  rm -f "$PID_FILE" "$BOOTSTRAP_FILE"
  say "killed"
}

status() {
  if ! broker_pid >/dev/null; then
    echo "stopped"
    return 3
  elif ! is_ready; then
    echo "starting"
    return 3
  fi
  echo "running 127.0.0.1:$(broker_port)"
}

bootstrap() {
  if ! broker_pid >/dev/null || ! is_ready; then
    die "no broker running for $STATE_DIR"
  fi
  echo "127.0.0.1:$(broker_port)"
}

keeping() { [[ "${ARBOR_KAFKA_KEEP:-}" == "1" ]]; }

case "${1:-}" in
  fetch | start | stop | status | bootstrap) "$1" ;;
  kill) kill_broker ;;
  *) die "usage: $0 fetch|start|stop|kill|status|bootstrap" ;;
esac
