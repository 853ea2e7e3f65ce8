#!/usr/bin/env bash
# Start KIND (nginx, haproxy, caddy, traefik) where lab.sh starts its Go
# proxy, with the Go proxy's flags:
#   start-proxy.sh KIND -listen IP:PORT -backend http://VIP:80 -log OUT/logs/proxy.log
#                  -ndjson OUT/logs/proxy.ndjson [-response-header-timeout 1s]
# It runs inside the proxy's namespace (lab.sh's start_bg) and execs the
# proxy in the foreground, so lab.sh stops it like the Go proxy. The
# proxy's configuration is written beside its logs (OUT/logs/KIND.conf),
# its logs into OUT/logs/ (README.md says which). Settings mirror the Go
# proxy's where the programs have them: keep-alive to the backend, no
# retries (one failed exchange, one log line, as with Go's ReverseProxy),
# the response-header timeout only when lab.sh asks for it.
set -euo pipefail
KIND=$1; shift
LISTEN="" BACKEND="" LOG="" RHT=""
while [ $# -gt 0 ]; do
	case "$1" in
	-listen) LISTEN=$2; shift 2 ;;
	-backend) BACKEND=$2; shift 2 ;;
	-log) LOG=$2; shift 2 ;;
	-ndjson) shift 2 ;;
	-response-header-timeout) RHT=$2; shift 2 ;;
	*) shift ;;
	esac
done
LOGS=$(dirname "$LOG")
OUT=$(dirname "$LOGS")
RUN=$OUT/.run
mkdir -p "$RUN"
# lab.sh's own truth derivation reads logs/proxy.log: it exists and holds no Go line.
: >"$LOG"
UP=${BACKEND#http://}
UP=${UP%/}
secs=${RHT%s}

case "$KIND" in
nginx)
	mkdir -p "$RUN/nginx"
	cat >"$LOGS/nginx.conf" <<NGX
# nginx in the lab's proxy namespace (examples/lab/proxies/start-proxy.sh)
worker_processes 1;
daemon off;
master_process off;
pid $RUN/nginx/nginx.pid;
error_log $LOGS/nginx-error.log error;
events { worker_connections 1024; }
http {
	access_log $LOGS/nginx-access.log combined;
	client_body_temp_path $RUN/nginx/body;
	proxy_temp_path $RUN/nginx/proxy;
	fastcgi_temp_path $RUN/nginx/fcgi;
	uwsgi_temp_path $RUN/nginx/uwsgi;
	scgi_temp_path $RUN/nginx/scgi;
	client_body_buffer_size 64k;
	upstream vip {
		server $UP;
		keepalive 64;
		keepalive_timeout 90s;
	}
	server {
		listen $LISTEN;
		location / {
			proxy_pass http://vip;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			# One attempt per request, as Go's ReverseProxy.
			proxy_next_upstream off;
			${secs:+proxy_read_timeout ${secs}s;}
		}
	}
}
NGX
	exec nginx -c "$LOGS/nginx.conf" -p "$RUN/nginx" -e "$LOGS/nginx-error.log"
	;;
haproxy)
	cat >"$LOGS/haproxy.conf" <<HAP
# HAProxy in the lab's proxy namespace (examples/lab/proxies/start-proxy.sh).
# Logs go to stdout as RFC 3164 syslog lines (what rsyslog would file), the
# log-format is httplog's with %bi:%bp (HAProxy's own socket to the server)
# after the server name, unless WTLAB_HAPROXY_HTTPLOG=1 asks for plain httplog.
global
	maxconn 4096
defaults
	mode http
	log stdout format rfc3164 local0
	option httplog
	timeout connect 10s
	timeout client 30s
	timeout server ${secs:-60}s
	timeout http-keep-alive 90s
	# One attempt per request, as Go's ReverseProxy.
	retries 0
	http-reuse ${WTLAB_HAPROXY_REUSE:-always}
frontend fe
	bind $LISTEN
$( [ "${WTLAB_HAPROXY_HTTPLOG:-}" = 1 ] || echo '	log-format "%ci:%cp [%tr] %ft %b/%s %bi:%bp %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r"' )
	default_backend vip
backend vip
	server vip $UP
HAP
	exec haproxy -db -f "$LOGS/haproxy.conf" >>"$LOGS/haproxy.log" 2>&1
	;;
caddy)
	cat >"$LOGS/Caddyfile" <<CDY
# Caddy in the lab's proxy namespace (examples/lab/proxies/start-proxy.sh)
{
	admin off
	auto_https off
	log {
		output file $LOGS/caddy.log
		format json
	}
}
http://$LISTEN {
	log {
		output file $LOGS/caddy-access.log
		format json
	}
	reverse_proxy $UP {
		transport http {
			keepalive 90s
			${secs:+response_header_timeout ${secs}s}
		}
	}
}
CDY
	cd "$RUN"
	XDG_DATA_HOME=$RUN XDG_CONFIG_HOME=$RUN exec caddy run --config "$LOGS/Caddyfile" --adapter caddyfile >>"$LOGS/caddy.stdout" 2>&1
	;;
traefik)
	cat >"$LOGS/traefik-dynamic.yml" <<TDY
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: vip
  services:
    vip:
      loadBalancer:
        servers:
          - url: "http://$UP"
TDY
	cat >"$LOGS/traefik.yml" <<TRF
# Traefik in the lab's proxy namespace (examples/lab/proxies/start-proxy.sh).
# Debug level: Traefik logs the proxy error line only there.
entryPoints:
  web:
    address: "$LISTEN"
providers:
  file:
    filename: "$LOGS/traefik-dynamic.yml"
log:
  level: DEBUG
  format: json
  filePath: "$LOGS/traefik.log"
accessLog:
  format: json
  filePath: "$LOGS/traefik-access.log"
serversTransport:
  maxIdleConnsPerHost: 4096
  forwardingTimeouts:
    idleConnTimeout: 90s
    ${secs:+responseHeaderTimeout: ${secs}s}
TRF
	cd "$RUN"
	exec "${WTLAB_TRAEFIK:?}" --configFile="$LOGS/traefik.yml" >>"$LOGS/traefik.stdout" 2>&1
	;;
*) echo "start-proxy.sh: unknown proxy $KIND" >&2; exit 2 ;;
esac
