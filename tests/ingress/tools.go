//go:build tools

// Package tools pins Traefik's main package so `go mod tidy` keeps its dependencies; build.sh compiles it.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
