package memory_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (change feed
// subscriptions run one each).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
