#!/usr/bin/env bash
# Installs (when missing) and starts on loopback the real services newsrec's tests use:
#   Redis           127.0.0.1:6379   (Debian redis-server; reused when one answers)
#   Redis Cluster   127.0.0.1:7101-7103 (three primaries of the same redis-server, no
#                   replicas; for the store's cluster tests)
#   Kafka protocol  127.0.0.1:9092   (Tansu 0.6.0 with the sqlite engine, cached in /opt/tansu)
#   Prometheus      binary only      (Debian prometheus + promtool; tests start their own)
#
#   scripts/services.sh [start]   install what is missing, start, wait until both answer
#   scripts/services.sh stop      stop only what this script started
#   scripts/services.sh status
#   scripts/services.sh running   exit 0 when both already answer
#
# Environment: NEWSREC_SERVICES_DIR (state, pid files; default /tmp/newsrec-services),
# TANSU_ROOT (default /opt/tansu).
set -euo pipefail

STATE=${NEWSREC_SERVICES_DIR:-/tmp/newsrec-services}
TANSU_ROOT=${TANSU_ROOT:-/opt/tansu}
TANSU=$TANSU_ROOT/bin/tansu
REDIS_PORT=6379
KAFKA_PORT=9092
CLUSTER_PORTS=(7101 7102 7103)

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$2" && return 0
    sleep 0.1
  done
  log "$1 did not answer on 127.0.0.1:$2 within $3 s"
  return 1
}

apt_ready=0
apt_install() { # package...
  if [ "$apt_ready" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_ready=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_all() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server"
    apt_install redis-server redis-tools
  fi
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    log "installing prometheus"
    apt_install prometheus
  fi
  if [ ! -x "$TANSU" ]; then
    log "installing tansu 0.6.0 into $TANSU_ROOT (about 10 minutes on 2 cores, once per machine)"
    cargo install tansu --version 0.6.0 --locked --features libsql,dynostore --root "$TANSU_ROOT" --quiet
  fi
}

start_redis() {
  if port_open "$REDIS_PORT"; then
    log "redis already answering on 127.0.0.1:$REDIS_PORT"
    return
  fi
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$STATE/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$STATE/redis" --logfile "$STATE/redis/redis.log" --pidfile "$STATE/redis.pid"
  wait_port redis "$REDIS_PORT" 20
}

cluster_ok() { redis-cli -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

start_cluster() {
  if cluster_ok; then
    log "redis cluster already answering on 127.0.0.1:${CLUSTER_PORTS[0]}"
    return
  fi
  log "starting a redis cluster on 127.0.0.1:${CLUSTER_PORTS[*]}"
  local port nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do
    mkdir -p "$STATE/cluster-$port"
    rm -f "$STATE/cluster-$port/nodes.conf"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file nodes.conf --dir "$STATE/cluster-$port" \
      --logfile "$STATE/cluster-$port/redis.log" --pidfile "$STATE/cluster-$port.pid"
    wait_port "redis cluster node" "$port" 20
    nodes+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  local i
  for ((i = 0; i < 100; i++)); do
    cluster_ok && return 0
    sleep 0.1
  done
  log "the redis cluster did not reach cluster_state:ok"
  return 1
}

start_tansu() {
  if port_open "$KAFKA_PORT"; then
    log "a broker already answers on 127.0.0.1:$KAFKA_PORT"
    return
  fi
  log "starting tansu on 127.0.0.1:$KAFKA_PORT"
  # Tansu reads a .env from its working directory: give it an empty one of its own.
  mkdir -p "$STATE/tansu"
  (
    cd "$STATE/tansu"
    : >.env
    nohup "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "sqlite://tansu.db" >tansu.log 2>&1 &
    echo $! >"$STATE/tansu.pid"
  )
  wait_port tansu "$KAFKA_PORT" 60
}

stop_one() { # name
  local pidfile="$STATE/$1.pid"
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      log "stopped $1 (pid $pid)"
    fi
    rm -f "$pidfile"
  fi
}

case "${1:-start}" in
  start)
    install_all
    start_redis
    start_cluster
    start_tansu
    log "ready: redis 127.0.0.1:$REDIS_PORT, redis cluster 127.0.0.1:${CLUSTER_PORTS[0]}, kafka 127.0.0.1:$KAFKA_PORT"
    ;;
  stop)
    stop_one tansu
    for port in "${CLUSTER_PORTS[@]}"; do stop_one "cluster-$port"; done
    stop_one redis
    ;;
  running)
    port_open "$REDIS_PORT" && port_open "$KAFKA_PORT" && cluster_ok
    ;;
  status)
    port_open "$REDIS_PORT" && log "redis: up" || log "redis: down"
    cluster_ok && log "redis cluster: up" || log "redis cluster: down"
    port_open "$KAFKA_PORT" && log "kafka: up" || log "kafka: down"
    ;;
  *)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
