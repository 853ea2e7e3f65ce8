module wiretrail.example/lab

// Built with the machine's Go 1.26 (/usr/local/go/bin/go; lab.sh finds it).
// Standard library only, so no go.sum.
go 1.26
