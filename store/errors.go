package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Sentinel errors, matched with errors.Is. Errors returned by the store wrap
// them and carry the "store: " prefix.
var (
	// ErrNotFound: the item does not exist (Get of an absent ID, a cache-only
	// read that finds nothing).
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrConflict: the backend holds a newer version than the one a change was
	// based on. The error is a *ConflictError carrying the remote value.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the backend cannot be reached. Backends wrap it for
	// transient failures; the memory backend uses it for injected faults.
	ErrUnavailable = errors.New("store: backend unavailable")
	// ErrInvalidConfig: New was given a bad Config; the error is a
	// *ConfigError naming the field.
	ErrInvalidConfig = errors.New("store: invalid config")
	// ErrInvalidArgument: a call was given a bad argument (an option of the
	// wrong type, an item whose ID does not match).
	ErrInvalidArgument = errors.New("store: invalid argument")
	// ErrNotPending: RetryPending or CancelPending named an ID with no
	// pending change.
	ErrNotPending = errors.New("store: no pending change")
	// ErrTxDone: a Tx was used after its callback returned.
	ErrTxDone = errors.New("store: transaction already finished")
	// ErrReporterPanic: a MetricsReporter call panicked; the panic was
	// recovered and passed to Config.ErrorHandler as a *ReporterPanicError.
	ErrReporterPanic = errors.New("store: metrics reporter panicked")
	// ErrBackend: a backend call failed. Every such failure the store
	// returns is a *BackendError matching it, whichever backend failed, and
	// also matches what the backend wrapped (ErrUnavailable for a transient
	// failure, context.Canceled...). A not-found is ErrNotFound and a
	// conflict ErrConflict instead.
	ErrBackend = errors.New("store: backend failed")
	// ErrNoChangeFeed: a backend's ChangeFeed.Subscribe returns an error
	// matching it when it has no feed to offer (the memory backend without
	// memory.WithChangeFeed); New then goes on without one.
	ErrNoChangeFeed = errors.New("store: the backend has no change feed")
)

// BackendError is a failed backend call, as the store returns it: the
// message is "store: backend <call>: " and the backend's own message.
type BackendError struct {
	// Op is the backend call: OpGet, OpGetAll, OpSave, OpDelete, or
	// OpTransaction for a backend transaction.
	Op  OperationType
	Err error
}

func (e *BackendError) Error() string {
	return "store: backend " + e.Op.String() + ": " + strings.TrimPrefix(e.Err.Error(), "store: ")
}

// Unwrap returns the backend's error.
func (e *BackendError) Unwrap() error { return e.Err }

// Is makes a BackendError match ErrBackend.
func (e *BackendError) Is(target error) bool { return target == ErrBackend }

// backendErr wraps a backend failure in a *BackendError; nil, not-found and
// conflict errors pass as they are (the store says those in its own words).
func backendErr(op OperationType, err error) error {
	var be *BackendError
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.As(err, &be) {
		return err
	}
	return &BackendError{Op: op, Err: err}
}

// ConfigError is returned by New for a bad Config. It names the field.
type ConfigError struct {
	Field  string // e.g. "IDOf", "Metrics.SampleRate"
	Reason string
}

func (e *ConfigError) Error() string {
	return "store: invalid config: " + e.Field + ": " + e.Reason
}

// Is makes a ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// ReporterPanicError carries a panic recovered from a MetricsReporter call.
type ReporterPanicError struct {
	Method string // e.g. "ReportOperation"
	Value  any    // what was passed to panic
}

func (e *ReporterPanicError) Error() string {
	return fmt.Sprintf("store: metrics reporter panicked in %s: %v", e.Method, e.Value)
}

// Is makes a ReporterPanicError match ErrReporterPanic.
func (e *ReporterPanicError) Is(target error) bool { return target == ErrReporterPanic }

// namedSentinels are the errors ErrorType reports by name.
var namedSentinels = []struct {
	err  error
	name string
}{
	{ErrNotFound, "store.ErrNotFound"},
	{ErrClosed, "store.ErrClosed"},
	{ErrConflict, "store.ErrConflict"},
	{ErrUnavailable, "store.ErrUnavailable"},
	{ErrInvalidConfig, "store.ErrInvalidConfig"},
	{ErrInvalidArgument, "store.ErrInvalidArgument"},
	{ErrNotPending, "store.ErrNotPending"},
	{ErrTxDone, "store.ErrTxDone"},
	{ErrReporterPanic, "store.ErrReporterPanic"},
	{context.Canceled, "context.Canceled"},
	{context.DeadlineExceeded, "context.DeadlineExceeded"},
}

// ErrorTypeOther is what ErrorType returns when an error carries nothing
// better than its message (e.g. an errors.New value).
const ErrorTypeOther = "_OTHER"

var errorTypeNames sync.Map // reflect.Type -> string

// ErrorType returns a bounded name for the kind of err, suitable as the
// error.type metric attribute: the name of a matched sentinel (the store's
// own, context.Canceled, context.DeadlineExceeded) such as
// "store.ErrNotFound"; else the Go type of the innermost wrapped error, such
// as "*net.OpError"; else ErrorTypeOther. It never returns a wrapper type
// (*fmt.wrapError) and never an error message. It returns "" for nil.
// After the first call for a given error type it does not allocate.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range namedSentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	inner := innermost(err)
	t := reflect.TypeOf(inner)
	if name, ok := errorTypeNames.Load(t); ok {
		return name.(string)
	}
	name := t.String()
	switch {
	case name == "*errors.errorString", strings.HasPrefix(name, "*fmt.wrapError"),
		name == "*errors.joinError", t.Name() == "" && t.Kind() != reflect.Pointer:
		name = ErrorTypeOther
	case t.Kind() == reflect.Pointer && t.Elem().Name() == "":
		name = ErrorTypeOther
	}
	errorTypeNames.Store(t, name)
	return name
}

// innermost follows Unwrap chains (the first branch of a joined error) to the
// error that wraps nothing.
func innermost(err error) error {
	for range 64 { // bounded: a cyclic Unwrap must not hang a reporter
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 || errs[0] == nil {
				return err
			}
			err = errs[0]
		default:
			return err
		}
	}
	return err
}
