// Package examples holds nexus's example programs, one per directory; its
// test builds and runs each of them, so that they stay real programs.
package examples
