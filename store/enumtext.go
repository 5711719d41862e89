package store

import (
	"encoding"
	"fmt"
	"strings"
)

// The small enums of the package implement encoding.TextMarshaler and
// encoding.TextUnmarshaler with their snake_case names, so that JSON (and
// any text encoding) shows "get" rather than 0, also as map keys:
// StoreStats encodes as {"OperationCounts":{"get":3}, ...}. A value out of
// range does not marshal (an error), and an unknown name does not
// unmarshal.
var (
	_ encoding.TextMarshaler   = OperationType(0)
	_ encoding.TextUnmarshaler = (*OperationType)(nil)
	_ encoding.TextMarshaler   = CacheEvent(0)
	_ encoding.TextUnmarshaler = (*CacheEvent)(nil)
	_ encoding.TextMarshaler   = SyncEvent(0)
	_ encoding.TextUnmarshaler = (*SyncEvent)(nil)
	_ encoding.TextMarshaler   = CacheResult(0)
	_ encoding.TextUnmarshaler = (*CacheResult)(nil)
	_ encoding.TextMarshaler   = FetchPolicy(0)
	_ encoding.TextUnmarshaler = (*FetchPolicy)(nil)
	_ encoding.TextMarshaler   = WritePolicy(0)
	_ encoding.TextUnmarshaler = (*WritePolicy)(nil)
	_ encoding.TextMarshaler   = Policy(0)
	_ encoding.TextUnmarshaler = (*Policy)(nil)
	_ encoding.TextMarshaler   = SyncStatus(0)
	_ encoding.TextUnmarshaler = (*SyncStatus)(nil)
	_ encoding.TextMarshaler   = ConflictStrategy(0)
	_ encoding.TextUnmarshaler = (*ConflictStrategy)(nil)
)

// marshalEnum returns the name of e, or an error for a value out of range.
func marshalEnum[E ~uint8](names []string, e E, typ string) ([]byte, error) {
	if int(e) >= len(names) {
		return nil, fmt.Errorf("store: %s(%d) has no name", typ, uint8(e))
	}
	return []byte(names[e]), nil
}

// unmarshalEnum sets *e to the value named text.
func unmarshalEnum[E ~uint8](names []string, e *E, text []byte, typ string) error {
	for i, n := range names {
		if n == string(text) {
			*e = E(i)
			return nil
		}
	}
	return fmt.Errorf("store: unknown %s %q", typ, text)
}

// MarshalText returns the operation's name, e.g. "get_all".
func (o OperationType) MarshalText() ([]byte, error) {
	return marshalEnum(operationNames[:], o, "OperationType")
}

// UnmarshalText parses an operation's name.
func (o *OperationType) UnmarshalText(text []byte) error {
	return unmarshalEnum(operationNames[:], o, text, "OperationType")
}

// MarshalText returns the event's name, e.g. "hit".
func (e CacheEvent) MarshalText() ([]byte, error) {
	return marshalEnum(cacheEventNames[:], e, "CacheEvent")
}

// UnmarshalText parses a cache event's name.
func (e *CacheEvent) UnmarshalText(text []byte) error {
	return unmarshalEnum(cacheEventNames[:], e, text, "CacheEvent")
}

// MarshalText returns the event's name, e.g. "conflict_resolved".
func (e SyncEvent) MarshalText() ([]byte, error) {
	return marshalEnum(syncEventNames[:], e, "SyncEvent")
}

// UnmarshalText parses a sync event's name.
func (e *SyncEvent) UnmarshalText(text []byte) error {
	return unmarshalEnum(syncEventNames[:], e, text, "SyncEvent")
}

var cacheResultNames = []string{"", "hit", "miss"}

// MarshalText returns "" (CacheResultNone), "hit" or "miss", as String.
func (r CacheResult) MarshalText() ([]byte, error) {
	return marshalEnum(cacheResultNames, r, "CacheResult")
}

// UnmarshalText parses "", "hit" or "miss".
func (r *CacheResult) UnmarshalText(text []byte) error {
	return unmarshalEnum(cacheResultNames, r, text, "CacheResult")
}

// MarshalText returns the policy's name, e.g. "cache_first".
func (p FetchPolicy) MarshalText() ([]byte, error) {
	return marshalEnum(fetchPolicyNames[:], p, "FetchPolicy")
}

// UnmarshalText parses a fetch policy's name.
func (p *FetchPolicy) UnmarshalText(text []byte) error {
	return unmarshalEnum(fetchPolicyNames[:], p, text, "FetchPolicy")
}

// MarshalText returns the policy's name, e.g. "cache_first".
func (p WritePolicy) MarshalText() ([]byte, error) {
	return marshalEnum(writePolicyNames[:], p, "WritePolicy")
}

// UnmarshalText parses a write policy's name.
func (p *WritePolicy) UnmarshalText(text []byte) error {
	return unmarshalEnum(writePolicyNames[:], p, text, "WritePolicy")
}

// MarshalText returns "" for PolicyNone, else the kind and the name, e.g.
// "fetch:cache_first" or "write:cache_first": unlike String (the metric
// attribute, where the operation tells the kind), the text must name one
// policy, and the fetch and write policies share names.
func (p Policy) MarshalText() ([]byte, error) {
	if f, ok := p.Fetch(); ok {
		return []byte("fetch:" + f.String()), nil
	}
	if w, ok := p.Write(); ok {
		return []byte("write:" + w.String()), nil
	}
	if p == PolicyNone {
		return []byte{}, nil
	}
	return nil, fmt.Errorf("store: Policy(%d) has no name", uint8(p))
}

// UnmarshalText parses what MarshalText returns.
func (p *Policy) UnmarshalText(text []byte) error {
	s := string(text)
	switch {
	case s == "":
		*p = PolicyNone
		return nil
	case strings.HasPrefix(s, "fetch:"):
		var f FetchPolicy
		if err := f.UnmarshalText([]byte(s[len("fetch:"):])); err == nil {
			*p = f.Policy()
			return nil
		}
	case strings.HasPrefix(s, "write:"):
		var w WritePolicy
		if err := w.UnmarshalText([]byte(s[len("write:"):])); err == nil {
			*p = w.Policy()
			return nil
		}
	}
	return fmt.Errorf("store: unknown Policy %q (want \"\", fetch:NAME or write:NAME)", text)
}

// MarshalText returns the status's name, e.g. "pending".
func (s SyncStatus) MarshalText() ([]byte, error) {
	return marshalEnum(syncStatusNames[:], s, "SyncStatus")
}

// UnmarshalText parses a sync status's name.
func (s *SyncStatus) UnmarshalText(text []byte) error {
	return unmarshalEnum(syncStatusNames[:], s, text, "SyncStatus")
}

// MarshalText returns the strategy's name, e.g. "server_wins".
func (s ConflictStrategy) MarshalText() ([]byte, error) {
	return marshalEnum(conflictNames[:], s, "ConflictStrategy")
}

// UnmarshalText parses a conflict strategy's name.
func (s *ConflictStrategy) UnmarshalText(text []byte) error {
	return unmarshalEnum(conflictNames[:], s, text, "ConflictStrategy")
}
