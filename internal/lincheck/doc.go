// Package lincheck holds the linearizability checkers' shared parts, for
// the test packages that check a store.Store against the consistency model
// of docs/store.md: the per-ID sequential model that porcupine checks
// histories against (Model), the explanation and HTML visualization of a
// history that fails it (Check), the time budget the checkers share
// (Budget, NEXUS_CHECK_LONG), and the replica checker (RunReplicas): two or
// three stores over one backend with a change feed, whose cached reads are
// held to Δ-atomicity, Δ the largest feed lag the run observed.
//
// It is used by tests only (store's and store/postgres's); nothing else
// imports it.
package lincheck
