// Package storetest is a conformance suite for store.Backend
// implementations. A backend author runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Backend[storetest.Item, string] {
//			b, err := mybackend.Open[storetest.Item, string](filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// Run calls the function once per subtest, so each subtest starts from an
// empty backend; the function gets the subtest's t, for t.TempDir and
// t.Cleanup. Items are of type Item, keyed by Item.ID.
//
// The suite checks the store.Backend contract: Get of an absent ID fails
// with an error matching store.ErrNotFound; Save creates and replaces;
// Delete reports whether the item existed; GetAll applies the query's
// filter, then its limit, in the order items were first saved (one subtest,
// GetAll/InsertionOrder, checks that order; the others accept any stable
// order); callers and the backend share no memory (see Item.Clone); every
// method fails with an error matching context.Canceled when its context is
// already cancelled, and changes nothing; concurrent calls stay consistent
// (run the suite with -race).
//
// When the backend implements store.VersionedBackend, the suite checks the
// version contract too: versions are at least 1 and grow with every save,
// even across a delete; conditional saves and deletes write or conflict as
// store.VersionedBackend documents, with a *store.ConflictError carrying
// the stored value; concurrent read-modify-conditional-write loops lose no
// update. When the backend implements store.TxBackend, it checks that a
// transaction sees its own writes, that others see them only after Commit,
// never after Rollback, and that Rollback after Commit returns nil. The
// subtests of a capability the backend lacks are skipped.
//
// Subtests run one after another, never in parallel. A backend's cleanups
// run when its subtest ends, but two backends may be open at once (the one
// that a capability's group of subtests is probed with, and a subtest's),
// so give each its own database, as t.TempDir does.
package storetest
