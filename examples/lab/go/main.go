// Command wtlab holds the three programs of the wiretrail lab: the reverse
// proxy (a real httputil.ReverseProxy with the seed's http.Transport), the
// backend HTTP server and the load generator. One binary keeps the build a
// single `go build` with nothing but the standard library.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wtlab proxy|backend|loadgen [flags]")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "proxy":
		runProxy(args)
	case "backend":
		runBackend(args)
	case "loadgen":
		runLoadgen(args)
	default:
		fmt.Fprintf(os.Stderr, "wtlab: unknown program %q\n", os.Args[1])
		os.Exit(2)
	}
}
