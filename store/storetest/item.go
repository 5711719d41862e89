package storetest

import "slices"

// Item is the item type the suite stores: small, JSON-encodable, and with a
// slice so that the suite can tell whether a backend shares memory with its
// callers. The suite saves each item under its ID field.
type Item struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

// Clone returns a copy of it that shares no memory with it. A backend that
// stores values in memory can use it to pass the suite's aliasing checks;
// memory.WithClone(storetest.Item.Clone) does.
func (it Item) Clone() Item {
	it.Tags = slices.Clone(it.Tags)
	return it
}

// equal reports whether a and b hold the same values; nil and empty Tags
// are equal, since an encoding backend may turn one into the other.
func equal(a, b Item) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Count == b.Count && slices.Equal(a.Tags, b.Tags)
}

// ids returns the IDs of items, in order, for failure messages.
func ids(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}
