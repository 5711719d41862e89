package sqlite

import (
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/nexusstore/nexus/store"
)

// Key is the constraint on item IDs: types whose values encode to a SQLite
// TEXT or INTEGER primary key. String kinds make a TEXT key; integer kinds
// make an INTEGER key (the table's rowid, the fastest lookup SQLite has).
//
// uint64 is left out because SQLite integers are signed 64-bit and half of
// its values would not fit. uint is allowed; on 64-bit platforms a uint ID
// above math.MaxInt64 is rejected by every method with an error matching
// store.ErrInvalidArgument rather than stored under a wrapped-around key.
type Key interface {
	~string | ~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32
}

// textKey reports whether ID values encode to TEXT (else INTEGER).
func textKey[ID Key]() bool {
	return reflect.TypeFor[ID]().Kind() == reflect.String
}

// encodeKey converts id to the value bound to the id column: a string or an
// int64.
func encodeKey[ID Key](id ID) (any, error) {
	v := reflect.ValueOf(id)
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	default: // the unsigned kinds of Key
		u := v.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("%w: ID %d does not fit a signed 64-bit INTEGER key", store.ErrInvalidArgument, u)
		}
		return int64(u), nil
	}
}

// formatID renders id for an error message: quoted for TEXT keys, so that an
// empty or blank ID stays visible.
func formatID[ID Key](id ID) string {
	if textKey[ID]() {
		return strconv.Quote(reflect.ValueOf(id).String())
	}
	return fmt.Sprint(id)
}

// formatRawID renders an id column value, as scanned into bytes, the way
// formatID renders the ID it came from.
func formatRawID(raw []byte, text bool) string {
	if text {
		return strconv.Quote(string(raw))
	}
	return string(raw)
}
