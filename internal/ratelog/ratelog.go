// Package ratelog keeps a flood of one kind of log line, which anything
// outside the gateway may cause, from becoming a flood in the log.
package ratelog

import (
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Limiter lets through a burst of lines, then a steady rate, and counts
// the lines it held back so that the next one written can say how many.
type Limiter struct {
	limit      *rate.Limiter
	suppressed atomic.Int64
}

// New returns a Limiter of perSecond lines a second after a burst.
func New(perSecond float64, burst int) *Limiter {
	return &Limiter{limit: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Allow reports whether a line may be written now and, when it may, how
// many were held back since the last one that was.
func (l *Limiter) Allow() (ok bool, suppressed int64) {
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
