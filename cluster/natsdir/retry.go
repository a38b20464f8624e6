package natsdir

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// errRetryNow asks retry for another attempt at once (a lost race).
var errRetryNow = errors.New("retry now")

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// permanent marks an error retry must not retry.
func permanent(err error) error { return permanentError{err} }

// retry runs f until it succeeds, returns a permanent error, or ctx ends
// (then the last error is returned, wrapped with ctx's). Each attempt gets
// at most 5 s. Backoff 50 ms doubling to 1 s.
func retry(ctx context.Context, log *slog.Logger, what string, f func(ctx context.Context) error) error {
	wait := 50 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.err
		}
		if errors.Is(err, errRetryNow) {
			continue
		}
		last = err
		if attempt%10 == 0 {
			log.Warn("natsdir: still retrying", "what", what, "attempt", attempt, "err", err)
		} else {
			log.Debug("natsdir: retrying", "what", what, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
