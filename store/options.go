package store

import (
	"fmt"
	"reflect"
)

// ReadOption configures one read (Get, GetAll, Watch, WatchAll).
type ReadOption interface{ applyRead(*readOptions) }

// WriteOption configures one write (Save, SaveAll, Delete, DeleteAll).
type WriteOption interface{ applyWrite(*writeOptions) }

type readOptions struct {
	policy    FetchPolicy
	hasPolicy bool
	filter    any // func(T) bool, checked against the store's T
	limit     int
}

type writeOptions struct {
	policy    WritePolicy
	hasPolicy bool
	tags      []string
}

type fetchPolicyOption FetchPolicy

func (o fetchPolicyOption) applyRead(r *readOptions) {
	r.policy, r.hasPolicy = FetchPolicy(o), true
}

// WithFetchPolicy overrides Config.FetchPolicy for one read.
func WithFetchPolicy(p FetchPolicy) ReadOption { return fetchPolicyOption(p) }

type writePolicyOption WritePolicy

func (o writePolicyOption) applyWrite(w *writeOptions) {
	w.policy, w.hasPolicy = WritePolicy(o), true
}

// WithWritePolicy overrides Config.WritePolicy for one write.
func WithWritePolicy(p WritePolicy) WriteOption { return writePolicyOption(p) }

type tagsOption []string

func (o tagsOption) applyWrite(w *writeOptions) { w.tags = append(w.tags, o...) }

// WithTags attaches tags to the cache entries a write creates, for
// InvalidateTags. Tags never become metric attributes.
func WithTags(tags ...string) WriteOption { return tagsOption(tags) }

type filterOption[T any] func(T) bool

func (o filterOption[T]) applyRead(r *readOptions) { r.filter = (func(T) bool)(o) }

// WithFilter keeps the items for which keep returns true (GetAll, WatchAll).
// Its type parameter must be the store's item type.
func WithFilter[T any](keep func(T) bool) ReadOption { return filterOption[T](keep) }

type limitOption int

func (o limitOption) applyRead(r *readOptions) { r.limit = int(o) }

// WithLimit caps the number of items a GetAll or WatchAll returns; 0 means
// no limit.
func WithLimit(n int) ReadOption { return limitOption(n) }

// query builds the Query for a listing read, checking the filter's type.
func query[T any](r *readOptions) (Query[T], error) {
	q := Query[T]{Limit: r.limit}
	if r.limit < 0 {
		return q, fmt.Errorf("%w: WithLimit(%d): must not be negative", ErrInvalidArgument, r.limit)
	}
	if r.filter != nil {
		f, ok := r.filter.(func(T) bool)
		if !ok {
			return q, fmt.Errorf("%w: WithFilter: got %T, want func(%v) bool", ErrInvalidArgument, r.filter, reflect.TypeFor[T]())
		}
		q.Filter = f
	}
	return q, nil
}
