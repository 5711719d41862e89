package nexusotel

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/nexusstore/nexus/store"
)

// Attribute keys nexus puts on its instruments and spans. Their values are
// bounded by construction: store names, operation and policy names, cache
// results, event names, and error types as store.ErrorType returns them.
// Item IDs, tags and error messages never become metric attributes.
const (
	// KeyStoreName is the store's name (store.Config.Name); on every
	// instrument.
	KeyStoreName = attribute.Key("nexus.store.name")
	// KeyOperation is the store operation ("get", "get_all", ...), or on
	// nexus.store.backend.duration the backend call ("get", "get_all",
	// "save", "delete", "transaction").
	KeyOperation = attribute.Key("nexus.store.operation")
	// KeyPolicy is the fetch or write policy in effect ("cache_first",
	// "network_first", ...); absent where no policy applies.
	KeyPolicy = attribute.Key("nexus.store.policy")
	// KeyCacheResult is "hit" or "miss" for reads the cache could serve;
	// absent otherwise.
	KeyCacheResult = attribute.Key("nexus.cache.result")
	// KeyErrorType is the OpenTelemetry error.type attribute: the name of a
	// matched sentinel ("store.ErrUnavailable", "context.Canceled"), the
	// innermost error's Go type, or "_OTHER"; present on failures only.
	KeyErrorType = attribute.Key("error.type")
	// KeyCacheEvent is the cache event of nexus.store.cache.events.
	KeyCacheEvent = attribute.Key("nexus.cache.event")
	// KeyCacheOrigin says, on invalidations, who caused them: "local" (the
	// store's own Invalidate calls) or "remote" (another writer's change,
	// heard through the backend's change feed).
	KeyCacheOrigin = attribute.Key("nexus.cache.origin")
	// KeyFeedEvent is the change-feed event of nexus.store.feed.events:
	// "changed", "reset" or "error".
	KeyFeedEvent = attribute.Key("nexus.feed.event")
	// KeySyncEvent is the sync event of nexus.store.sync.events.
	KeySyncEvent = attribute.Key("nexus.sync.event")
	// KeySyncOutcome is "completed" or "failed" on nexus.store.sync.duration.
	KeySyncOutcome = attribute.Key("nexus.sync.outcome")
	// KeyRecoverable says on nexus.store.errors whether the store handled the
	// error itself (true) or returned it to the caller (false).
	KeyRecoverable = attribute.Key("nexus.error.recoverable")
	// KeyItemCount is the number of items an operation returned, saved or
	// deleted; on operation spans only (spans are not aggregated, so it
	// costs no cardinality).
	KeyItemCount = attribute.Key("nexus.store.items")
)

// reservedKeys are the keys WithAttributes may not use: nexus sets them
// itself, and a static value would silently replace (or be replaced by) the
// real one.
var reservedKeys = []attribute.Key{
	KeyStoreName, KeyOperation, KeyPolicy, KeyCacheResult, KeyErrorType,
	KeyCacheEvent, KeySyncEvent, KeySyncOutcome, KeyRecoverable,
	KeyCacheOrigin, KeyFeedEvent,
}

// The database client conventions' attributes of the connection pool
// gauges.
const (
	keyConnState = attribute.Key("db.client.connection.state")
	keyPoolName  = attribute.Key("db.client.connection.pool.name")
)

// checkStaticAttrs rejects static attributes that are invalid, repeated, or
// clash with nexus's own keys (anything under "nexus." is reserved, so that
// later releases can add attributes without breaking anyone).
func checkStaticAttrs(attrs []attribute.KeyValue) error {
	seen := make(map[attribute.Key]bool, len(attrs))
	for _, kv := range attrs {
		switch {
		case !kv.Valid():
			return fmt.Errorf("nexusotel: WithAttributes: invalid attribute %q (empty key or no value)", string(kv.Key))
		case seen[kv.Key]:
			return fmt.Errorf("nexusotel: WithAttributes: attribute %q given twice", string(kv.Key))
		case strings.HasPrefix(string(kv.Key), "nexus."):
			return fmt.Errorf("nexusotel: WithAttributes: attribute %q clashes with nexus's own attributes (the \"nexus.\" namespace is reserved)", string(kv.Key))
		}
		for _, k := range reservedKeys {
			if kv.Key == k {
				return fmt.Errorf("nexusotel: WithAttributes: attribute %q clashes with the attribute nexus sets itself", string(kv.Key))
			}
		}
		seen[kv.Key] = true
	}
	return nil
}

// attrSet builds the attribute set of one series: the store name, the
// static attributes and kvs.
func (s *storeReporter) attrSet(kvs ...attribute.KeyValue) attribute.Set {
	all := make([]attribute.KeyValue, 0, 1+len(s.r.cfg.attrs)+len(kvs))
	all = append(all, KeyStoreName.String(s.name))
	all = append(all, s.r.cfg.attrs...)
	all = append(all, kvs...)
	return attribute.NewSet(all...)
}

// operationAttrs returns the attributes of an operation series, leaving out
// the policy and cache result where they do not apply and error.type on
// success.
func operationAttrs(op store.OperationType, p store.Policy, cr store.CacheResult, errType string) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 4)
	kvs = append(kvs, KeyOperation.String(op.String()))
	if p != store.PolicyNone {
		kvs = append(kvs, KeyPolicy.String(p.String()))
	}
	if cr != store.CacheResultNone {
		kvs = append(kvs, KeyCacheResult.String(cr.String()))
	}
	if errType != "" {
		kvs = append(kvs, KeyErrorType.String(errType))
	}
	return kvs
}

// The attribute values mapped back to the store's enumerations, for
// reading collected data.
var (
	operationByName  = byName[store.OperationType]()
	cacheEventByName = byName[store.CacheEvent]()
	syncEventByName  = byName[store.SyncEvent]()
)

func byName[E interface {
	~uint8
	Valid() bool
	String() string
}]() map[string]E {
	m := make(map[string]E)
	for e := E(0); e.Valid(); e++ {
		m[e.String()] = e
	}
	return m
}
