#!/usr/bin/env bash
# Real Elasticsearch / OpenSearch servers for the test suite, from Maven
# Central only (the integ-test-zip distributions, cached in ~/.m2).
#
#   scripts/search-server.sh start FLAVOR   # prints the URL as the last stdout line
#   scripts/search-server.sh env FLAVOR     # WIRETRAIL_TEST_ES_* assignments for a running one
#   scripts/search-server.sh stop FLAVOR    # kills it by its recorded PID, removes its data
#   scripts/search-server.sh fetch FLAVOR   # only resolve the distribution (CI warm-up)
#   scripts/search-server.sh list           # flavors, coordinates, JDKs
#
# FLAVOR: es9, es8 (Elasticsearch), os2, os3 (OpenSearch). One server per
# flavor at a time; each listens on 127.0.0.1 on ports the OS chose
# (http.port 0 + node.portsfile), single node, disk thresholds off, a
# 512 MiB heap (override with WIRETRAIL_SEARCH_HEAP=1g).
#
# Elasticsearch runs with security ON over plain http and a file-realm user
# made for this server (superuser role): the credentials are written to
# STATE/FLAVOR/credentials (the `auth.credentials_file` format) and `env`
# prints WIRETRAIL_TEST_ES_CREDENTIALS for it. OpenSearch's integ-test
# distribution has no security plugin: no credentials.
#
# Elasticsearch and OpenSearch refuse to run as root: as root the script
# runs them as the system user `wtsearch` (created when missing).
#
# Environment: WIRETRAIL_SEARCH_STATE (default ${TMPDIR:-/tmp}/wiretrail-search),
# WIRETRAIL_SEARCH_HEAP, WIRETRAIL_ES9_VERSION, WIRETRAIL_ES8_VERSION,
# WIRETRAIL_OS2_VERSION, WIRETRAIL_OS3_VERSION, WIRETRAIL_JDK17, WIRETRAIL_JDK25.
set -euo pipefail

STATE_ROOT=${WIRETRAIL_SEARCH_STATE:-${TMPDIR:-/tmp}/wiretrail-search}
HEAP=${WIRETRAIL_SEARCH_HEAP:-512m}
JDK17=${WIRETRAIL_JDK17:-/usr/lib/jvm/java-17-openjdk-amd64}
JDK25=${WIRETRAIL_JDK25:-/usr/lib/jvm/temurin-25-jdk-amd64}
M2_REPO=${WIRETRAIL_M2_REPO:-$HOME/.m2/repository}
RUN_USER=wtsearch
START_TIMEOUT_S=${WIRETRAIL_SEARCH_START_TIMEOUT:-240}

say() { printf 'search-server: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Versions: the newest of each line that Maven Central serves as an
# integ-test-zip (checked with `mvn dependency:get`; see the crate README).
flavor_info() {
    case "$1" in
        es9) KIND=es; GROUP=org.elasticsearch.distribution.integ-test-zip; ARTIFACT=elasticsearch
             VERSION=${WIRETRAIL_ES9_VERSION:-9.2.0}; JDK=$JDK25 ;;
        es8) KIND=es; GROUP=org.elasticsearch.distribution.integ-test-zip; ARTIFACT=elasticsearch
             VERSION=${WIRETRAIL_ES8_VERSION:-8.19.21}; JDK=$JDK17 ;;
        os2) KIND=os; GROUP=org.opensearch.distribution.integ-test-zip; ARTIFACT=opensearch
             VERSION=${WIRETRAIL_OS2_VERSION:-2.19.6}; JDK=$JDK17 ;;
        os3) KIND=os; GROUP=org.opensearch.distribution.integ-test-zip; ARTIFACT=opensearch
             VERSION=${WIRETRAIL_OS3_VERSION:-3.6.0}; JDK=$JDK25 ;;
        *) die "unknown flavor '${1:-}' (es9, es8, os2, os3)" ;;
    esac
    COORD="$GROUP:$ARTIFACT:$VERSION:zip"
    ZIP="$M2_REPO/${GROUP//.//}/$ARTIFACT/$VERSION/$ARTIFACT-$VERSION.zip"
    STATE="$STATE_ROOT/$1"
}

# Resolve the distribution into ~/.m2 (a no-op when cached). On failure,
# name the coordinate and quote what Maven answered.
fetch() {
    if [ -s "$ZIP" ]; then
        say "$COORD cached: $ZIP"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: cannot resolve $COORD (apt-get install maven)"
    say "resolving $COORD from Maven Central"
    local log
    log=$(mktemp)
    if ! mvn -B -q dependency:get -Dartifact="$COORD" -Dtransitive=false \
            ${WIRETRAIL_M2_REPO:+-Dmaven.repo.local="$M2_REPO"} >"$log" 2>&1 || [ ! -s "$ZIP" ]; then
        say "could not resolve $COORD; Maven answered:"
        grep -E 'ERROR|Could not|not find' "$log" | head -5 | sed 's/^/    /' >&2 || tail -5 "$log" >&2
        rm -f "$log"
        exit 3
    fi
    rm -f "$log"
    say "resolved $COORD ($(du -h "$ZIP" | cut -f1))"
}

run_as_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$RUN_USER" >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER"
    say "created system user $RUN_USER (Elasticsearch/OpenSearch refuse to run as root)"
}

is_running() {
    [ -s "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null
}

curl_auth() {
    if [ -s "$STATE/credentials" ]; then
        local user pw
        user=$(sed -n 's/^user=//p' "$STATE/credentials")
        pw=$(sed -n 's/^password=//p' "$STATE/credentials")
        curl -sS -u "$user:$pw" "$@"
    else
        curl -sS "$@"
    fi
}

start() {
    local flavor=$1
    [ -x "$JDK/bin/java" ] || die "$flavor needs the JDK at $JDK (set WIRETRAIL_JDK17 / WIRETRAIL_JDK25)"
    if is_running; then
        say "$flavor already running (pid $(cat "$STATE/pid"))"
        cat "$STATE/url"
        return 0
    fi
    fetch
    ensure_user
    rm -rf "$STATE"
    mkdir -p "$STATE"
    say "unpacking $(basename "$ZIP") into $STATE"
    unzip -q "$ZIP" -d "$STATE/dist"
    local home
    home=$(echo "$STATE"/dist/*/)
    home=${home%/}
    mkdir -p "$STATE/data" "$STATE/logs" "$STATE/tmp"
    local conf="$home/config"
    local yml=elasticsearch.yml
    [ "$KIND" = os ] && yml=opensearch.yml
    cat >>"$conf/$yml" <<EOF

# --- scripts/search-server.sh ($flavor)
cluster.name: wiretrail-$flavor
node.name: $flavor
path.data: $STATE/data
path.logs: $STATE/logs
network.host: 127.0.0.1
http.port: 0
transport.port: 0
node.portsfile: true
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [ "$KIND" = es ]; then
        cat >>"$conf/$yml" <<EOF
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
EOF
    fi
    mkdir -p "$conf/jvm.options.d"
    printf -- '-Xms%s\n-Xmx%s\n' "$HEAP" "$HEAP" >"$conf/jvm.options.d/wiretrail.options"
    if [ "$KIND" = es ]; then
        local pw
        pw="wt-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)"
        ES_JAVA_HOME=$JDK ES_PATH_CONF=$conf "$home/bin/elasticsearch-users" useradd wiretrail -p "$pw" -r superuser >/dev/null
        umask 077
        printf 'user=wiretrail\npassword=%s\n' "$pw" >"$STATE/credentials"
        umask 022
    fi
    if [ "$(id -u)" = 0 ]; then
        chown -R "$RUN_USER" "$STATE"
        chown root "$STATE/credentials" 2>/dev/null || true
    fi
    say "starting $flavor: $ARTIFACT $VERSION on $JDK (heap $HEAP)"
    local started=$SECONDS rc=0
    # With -d the launcher daemonizes the node and exits (Elasticsearch once
    # the node started, OpenSearch at once); its status says whether it could.
    if [ "$KIND" = es ]; then
        run_as_user env ES_JAVA_HOME="$JDK" ES_PATH_CONF="$conf" ES_TMPDIR="$STATE/tmp" \
            ES_JAVA_OPTS="" timeout "$START_TIMEOUT_S" "$home/bin/elasticsearch" -d -p "$STATE/pid" \
            >"$STATE/start.log" 2>&1 || rc=$?
    else
        run_as_user env OPENSEARCH_JAVA_HOME="$JDK" JAVA_HOME="$JDK" OPENSEARCH_PATH_CONF="$conf" \
            OPENSEARCH_TMPDIR="$STATE/tmp" OPENSEARCH_JAVA_OPTS="" \
            timeout "$START_TIMEOUT_S" "$home/bin/opensearch" -d -p "$STATE/pid" \
            >"$STATE/start.log" 2>&1 || rc=$?
    fi
    failed() {
        say "$flavor failed to start ($1); launcher output and node log:"
        grep -v -e '^WARNING' -e 'no-jdk' "$STATE/start.log" | tail -20 >&2 || true
        cat "$STATE/logs/"*.log 2>/dev/null | grep -E 'ERROR|Exception|error' | tail -20 >&2 || true
        stop_flavor "$flavor" >/dev/null 2>&1 || true
        exit 1
    }
    [ "$rc" = 0 ] || failed "launcher exit status $rc"
    # The port the node bound (node.portsfile), then its health.
    local port=""
    while [ -z "$port" ]; do
        if [ -s "$STATE/logs/http.ports" ]; then
            port=$(head -1 "$STATE/logs/http.ports" | sed 's/.*://')
            break
        fi
        if [ -s "$STATE/pid" ] && ! is_running; then
            failed "the node exited"
        fi
        [ $((SECONDS - started)) -le "$START_TIMEOUT_S" ] ||
            failed "no HTTP port bound within ${START_TIMEOUT_S}s"
        sleep 1
    done
    local url="http://127.0.0.1:$port"
    echo "$url" >"$STATE/url"
    local health
    if ! health=$(curl_auth --max-time "$START_TIMEOUT_S" \
            "$url/_cluster/health?wait_for_status=yellow&timeout=${START_TIMEOUT_S}s"); then
        say "$flavor: no health answer from $url"
        exit 1
    fi
    case "$health" in
        *'"status":"green"'* | *'"status":"yellow"'*) ;;
        *) say "$flavor not healthy: $health"; exit 1 ;;
    esac
    say "$flavor up in $((SECONDS - started))s (pid $(cat "$STATE/pid")): $(describe "$url")"
    [ -s "$STATE/credentials" ] && say "credentials: $STATE/credentials (user wiretrail, superuser)"
    echo "$url"
}

# What the server says it is: `GET /`, or, where that is not routed
# (Elasticsearch's integ-test zip has no rest-root module), the node info.
describe() {
    local url=$1 root number dist
    root=$(curl_auth "$url/" | tr -d '\n')
    number=$(printf '%s' "$root" | sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p')
    dist=$(printf '%s' "$root" | sed -n 's/.*"distribution" *: *"\([^"]*\)".*/\1/p')
    if [ -n "$number" ]; then
        echo "GET / says ${dist:-elasticsearch} $number"
    else
        number=$(curl_auth "$url/_nodes/_local?filter_path=nodes.*.version" | sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p')
        echo "GET / not routed (${root:0:80}); GET /_nodes/_local says $ARTIFACT $number"
    fi
}

stop_flavor() {
    local flavor=$1
    if [ -s "$STATE/pid" ]; then
        local pid
        pid=$(cat "$STATE/pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            if kill -0 "$pid" 2>/dev/null; then
                say "$flavor (pid $pid) still alive after 30s: SIGKILL"
                kill -9 "$pid" 2>/dev/null || true
            fi
            say "$flavor stopped (pid $pid)"
        else
            say "$flavor was not running (stale pid $pid)"
        fi
    else
        say "$flavor: no recorded pid (not started by this script, or already stopped)"
    fi
    rm -rf "$STATE"
}

cmd=${1:-}
case "$cmd" in
    start) flavor_info "${2:-}"; start "$2" ;;
    stop) flavor_info "${2:-}"; stop_flavor "$2" ;;
    fetch) flavor_info "${2:-}"; fetch ;;
    env)
        flavor_info "${2:-}"
        is_running || die "$2 is not running (scripts/search-server.sh start $2)"
        echo "WIRETRAIL_TEST_ES_URL=$(cat "$STATE/url")"
        echo "WIRETRAIL_TEST_ES_FLAVOR=$2"
        if [ -s "$STATE/credentials" ]; then
            echo "WIRETRAIL_TEST_ES_CREDENTIALS=$STATE/credentials"
        else
            echo "WIRETRAIL_TEST_ES_CREDENTIALS="
        fi
        ;;
    version)
        flavor_info "${2:-}"
        is_running || die "$2 is not running"
        describe "$(cat "$STATE/url")"
        ;;
    list)
        for f in es9 es8 os2 os3; do
            flavor_info "$f"
            printf '%s\t%s\t%s\n' "$f" "$COORD" "$JDK"
        done
        ;;
    *)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
