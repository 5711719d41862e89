// Package doccheck holds the test that keeps the README and docs/ honest:
// every Go block is code that compiles (it is found in the repository's Go
// files), every path a shell block or a link names exists, every YAML block
// is part of a shipped (and tested) file.
package doccheck
