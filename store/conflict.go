package store

import (
	"time"
)

// ConflictStrategy chooses how Sync resolves a conflict: a pending change
// whose base version is no longer the backend's.
type ConflictStrategy uint8

const (
	// ConflictServerWins keeps the backend's value and drops the local
	// change (the default).
	ConflictServerWins ConflictStrategy = iota
	// ConflictClientWins pushes the local change over the backend's value.
	ConflictClientWins
	// ConflictLatestWins keeps whichever was written last: the local change
	// (when it was made) or the backend's value (its Updated time).
	ConflictLatestWins
	// ConflictCustom asks Config.ResolveConflict.
	ConflictCustom

	numConflictStrategies
)

var conflictNames = [numConflictStrategies]string{"server_wins", "client_wins", "latest_wins", "custom"}

// String returns the snake_case name.
func (s ConflictStrategy) String() string {
	return enumName(conflictNames[:], s, "ConflictStrategy")
}

func (s ConflictStrategy) valid() bool { return s < numConflictStrategies }

// Conflict describes a pending change that the backend rejected because its
// value changed since the change was based on it.
type Conflict[T any, ID comparable] struct {
	ID ID
	// Local is the pending change's value; LocalDeleted is set for a pending
	// delete.
	Local        T
	LocalDeleted bool
	// LocalTime is when the local change was made.
	LocalTime time.Time
	// Remote is the backend's value; RemoteDeleted is set when the backend
	// holds no item.
	Remote        Versioned[T]
	RemoteDeleted bool
}

// Resolution is a ConflictCustom resolver's answer; build it with KeepLocal,
// KeepRemote, Merged or Skip.
type Resolution[T any] struct {
	kind   resolutionKind
	merged T
}

type resolutionKind uint8

const (
	resolveKeepRemote resolutionKind = iota
	resolveKeepLocal
	resolveMerged
	resolveSkip
)

// KeepLocal pushes the local change over the backend's value.
func KeepLocal[T any]() Resolution[T] { return Resolution[T]{kind: resolveKeepLocal} }

// KeepRemote keeps the backend's value and drops the local change.
func KeepRemote[T any]() Resolution[T] { return Resolution[T]{kind: resolveKeepRemote} }

// Merged pushes v, a merge of both sides, and caches it.
func Merged[T any](v T) Resolution[T] { return Resolution[T]{kind: resolveMerged, merged: v} }

// Skip leaves the change pending, unresolved, with ErrConflict as its last
// error; a later Sync meets the conflict again.
func Skip[T any]() Resolution[T] { return Resolution[T]{kind: resolveSkip} }
