//go:build !unix

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "multiexit: runs on Linux, macOS and the BSDs only")
	os.Exit(125)
}
