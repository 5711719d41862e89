package store_test

// The sequential specification the linearizability checker holds the store
// to lives in internal/lincheck (model.go there says what it is, and its
// TestLinearizabilityModel checks it), shared with the replica checkers
// (replicas_linearizability_test.go here and in store/postgres). These
// names keep the checker's code as it was.

import "github.com/nexusstore/nexus/internal/lincheck"

// atomicWrites selects the model of a successful write that touches the
// backend: one atomic step (linearizable reads, as docs/store.md promises),
// or Commit and End (see internal/lincheck/model.go).
const atomicWrites = true

type (
	linIn   = lincheck.Input
	linOut  = lincheck.Output
	endMode = lincheck.EndMode
)

const (
	linRead   = lincheck.Read
	linWrite  = lincheck.Write
	linBegin  = lincheck.Begin
	linCommit = lincheck.Commit
	linEnd    = lincheck.End
	linNote   = lincheck.Note

	endOK     = lincheck.EndOK
	endFailed = lincheck.EndFailed
	endMaybe  = lincheck.EndMaybe
)
