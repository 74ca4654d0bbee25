package upstream

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/ratelog"
)

// serverLog adapts the embedded nats-server's logger to zap. Warnings and
// errors are rate-limited: the server writes one per denied publish or
// subscription, so any local process could otherwise flood the log.
type serverLog struct {
	s     *zap.SugaredLogger
	limit *ratelog.Limiter
}

// Warnings and errors beyond a burst of serverLogBurst come through at
// serverLogRate per second; the next line that does says how many did not.
const (
	serverLogRate  = 10
	serverLogBurst = 100
)

func newServerLog(log *zap.Logger) *serverLog {
	return &serverLog{s: log.Named("nats-server").Sugar(), limit: ratelog.New(serverLogRate, serverLogBurst)}
}

func (l *serverLog) Noticef(f string, v ...any) { l.s.Infof(f, v...) }
func (l *serverLog) Warnf(f string, v ...any)   { l.limited(l.s.Warnw, f, v) }
func (l *serverLog) Errorf(f string, v ...any)  { l.limited(l.s.Errorw, f, v) }
func (l *serverLog) Fatalf(f string, v ...any)  { l.s.Errorf(f, v...) }
func (l *serverLog) Debugf(f string, v ...any)  { l.s.Debugf(f, v...) }
func (l *serverLog) Tracef(f string, v ...any)  { l.s.Debugf(f, v...) }

func (l *serverLog) limited(write func(string, ...any), f string, v []any) {
	ok, n := l.limit.Allow()
	if !ok {
		return
	}
	if n > 0 {
		write(fmt.Sprintf(f, v...), "suppressed_before", n)
		return
	}
	write(fmt.Sprintf(f, v...))
}
