package postgres

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nexusstore/nexus/store"
)

// Key is the constraint on item IDs: types whose values encode to a
// PostgreSQL TEXT or BIGINT primary key. String kinds make a TEXT key;
// integer kinds make a BIGINT key.
//
// uint64 is left out because BIGINT is signed and half of its values would
// not fit. uint is allowed; on 64-bit platforms a uint ID above
// math.MaxInt64 is rejected by every method with an error matching
// store.ErrInvalidArgument rather than stored under a wrapped-around key.
type Key interface {
	~string | ~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32
}

// MaxIDBytes is the longest TEXT ID, in bytes of UTF-8. It keeps a change
// notification (which carries the ID) under NOTIFY's 8000-byte payload
// limit, and the primary key under the size a B-tree index entry may have.
// Longer IDs are refused with an error matching store.ErrInvalidArgument,
// and the table's CHECK constraint refuses them from plain SQL too.
const MaxIDBytes = 2048

// textKey reports whether ID values encode to TEXT (else BIGINT).
func textKey[ID Key]() bool {
	return reflect.TypeFor[ID]().Kind() == reflect.String
}

// encodeKey converts id to the value bound to the id column: a string or an
// int64. It refuses what the column cannot hold.
func encodeKey[ID Key](id ID) (any, error) {
	switch k := any(id).(type) { // the common types, without reflection
	case string:
		return k, checkText(k)
	case int64:
		return k, nil
	case int:
		return int64(k), nil
	}
	v := reflect.ValueOf(id)
	switch v.Kind() {
	case reflect.String:
		return v.String(), checkText(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	default: // the unsigned kinds of Key
		u := v.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("%w: ID %d does not fit a signed 64-bit BIGINT key", store.ErrInvalidArgument, u)
		}
		return int64(u), nil
	}
}

// checkText refuses a TEXT ID the table cannot hold or a notification
// cannot carry.
func checkText(s string) error {
	switch {
	case len(s) > MaxIDBytes:
		return fmt.Errorf("%w: ID of %d bytes is longer than postgres.MaxIDBytes (%d)", store.ErrInvalidArgument, len(s), MaxIDBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: ID is not valid UTF-8", store.ErrInvalidArgument)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: ID contains a NUL byte, which PostgreSQL text cannot hold", store.ErrInvalidArgument)
	}
	return nil
}

// decodeKey parses the text form of an id column value (as a change
// notification carries it) into an ID.
func decodeKey[ID Key](s string) (ID, error) {
	var id ID
	v := reflect.ValueOf(&id).Elem()
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return id, fmt.Errorf("id %q does not fit %v", s, v.Type())
		}
		v.SetInt(n)
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(n) {
			return id, fmt.Errorf("id %q does not fit %v", s, v.Type())
		}
		v.SetUint(n)
	}
	return id, nil
}

// formatID renders id for an error message: quoted for TEXT keys, so that an
// empty or blank ID stays visible; a long ID is cut.
func formatID[ID Key](id ID) string {
	if textKey[ID]() {
		return formatText(reflect.ValueOf(id).String())
	}
	return fmt.Sprint(id)
}

// formatRawID renders an id column value in its text form the way formatID
// renders the ID it came from.
func formatRawID(s string, text bool) string {
	if text {
		return formatText(s)
	}
	return s
}

func formatText(s string) string {
	const maxShown = 64
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + "..."
	}
	return strconv.Quote(s)
}
