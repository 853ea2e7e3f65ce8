#!/usr/bin/env bash
# Build Traefik v3.7.13 from the Go module proxy for the lab (Traefik is not
# packaged by Debian). `go install github.com/traefik/traefik/v3/cmd/traefik@v3.7.13`
# is refused (its go.mod has replace directives), and four things in its
# module graph are not served by the module proxy this machine reaches, so
# the release's source is built as the main module with four edits:
#   - pkg/config/dynamic/ext (a nested module the release archive leaves out):
#     empty `HTTP` and `Router` structs, its open-source content;
#   - the `github.com/containous/go-http-auth` fork: upstream
#     `github.com/abbot/go-http-auth v0.4.0` instead; basic auth's
#     CheckSecret (only in the fork) refuses every password, digest auth
#     uses RequireAuth; neither middleware is used by the lab;
#   - lego's ACME DNS providers (several SDKs not served): DNS challenges
#     say "not built in".
# None of this touches the reverse proxy or its logging.
#   examples/lab/proxies/build-traefik.sh OUT_BINARY   (~1.5 GB of module cache, ~10 min on 2 cores)
set -euo pipefail
OUT=$(realpath -m "${1:?usage: build-traefik.sh OUT_BINARY}")
GO=${GO:-/usr/local/go/bin/go}
V=v3.7.13
WORK=$(mktemp -d /tmp/wt-traefik.XXXXXX)
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
export GOFLAGS=-modcacherw
(cd "$WORK" && "$GO" mod download -json "github.com/traefik/traefik/v3@$V" > dl.json)
ZIP=$(python3 -c "import json; print(json.load(open('$WORK/dl.json'))['Zip'])")
(cd "$WORK" && unzip -q "$ZIP")
SRC="$WORK/github.com/traefik/traefik/v3@$V"
chmod -R u+w "$SRC"
cd "$SRC"
mkdir -p pkg/config/dynamic/ext
printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' > pkg/config/dynamic/ext/go.mod
printf 'package ext\n\ntype HTTP struct{}\n\ntype Router struct{}\n' > pkg/config/dynamic/ext/ext.go
sed -i 's#github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20260804094822-b975dcaa8c48#github.com/abbot/go-http-auth => github.com/abbot/go-http-auth v0.4.0#' go.mod
sed -i 's#^\t"github.com/go-acme/lego/v5/providers/dns"$##; s#provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)#provider, err = nil, fmt.Errorf("DNS challenge provider %q: not built in (wiretrail lab build)", p.DNSChallenge.Provider)#' pkg/provider/acme/provider.go
sed -i 's/checkSecret:       goauth.CheckSecret,/checkSecret:       func(string, string) bool { return false },/' pkg/middlewares/auth/basic_auth.go
sed -i 's/d.auth.RequireAuthStale(rw, req)/d.auth.RequireAuth(rw, req)/' pkg/middlewares/auth/digest_auth.go
"$GO" build -mod=mod -o "$OUT" ./cmd/traefik
"$OUT" version
