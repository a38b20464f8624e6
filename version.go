package holdfast

// Version is set at build time with -ldflags -X.
var Version = "dev"
