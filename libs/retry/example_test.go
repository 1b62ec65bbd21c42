package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ownersync/ownersync/libs/retry"
)

// errBusy stands for a client error that says how long the server wants us to wait.
type errBusy struct{}

func (errBusy) Error() string             { return "server busy" }
func (errBusy) RetryAfter() time.Duration { return 5 * time.Millisecond }

var errInactiveOwner = errors.New("INACTIVE_OWNER_OR_USER")

// A caller wraps one outbound call; the client's classifier (salesforce.Transient,
// hubspot.Transient) decides what is worth another attempt.
func ExampleDo() {
	transient := func(err error) bool { return !errors.Is(err, errInactiveOwner) }
	policy := retry.Policy{InitialInterval: time.Millisecond, MaxAttempts: 4, Retryable: transient}

	calls := 0
	err := retry.Do(context.Background(), policy, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return errBusy{} // waits at least its RetryAfter
		}
		return nil
	})
	fmt.Println(calls, err)

	calls = 0
	err = retry.Do(context.Background(), policy, func(ctx context.Context) error {
		calls++
		return fmt.Errorf("update owner: %w", errInactiveOwner)
	})
	fmt.Println(calls, err)
	// Output:
	// 3 <nil>
	// 1 update owner: INACTIVE_OWNER_OR_USER
}
