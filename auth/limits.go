package auth

import "sync"

// limiter counts live admissions. It lives in the Gate, so a config
// reload starts with the new Gate's own counts; old streams are ended by
// the handler on reload anyway.
type limiter struct {
	max, perSubject int

	mu    sync.Mutex
	total int
	bySub map[string]int
}

func newLimiter(max, perSubject int) *limiter {
	return &limiter{max: max, perSubject: perSubject, bySub: map[string]int{}}
}

// acquire takes one slot for sub. Anonymous principals (sub "") share no
// per-subject count: they would all be one subject and lock each other out.
func (l *limiter) acquire(sub string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return nil, false
	}
	perSub := sub != "" && l.perSubject > 0
	if perSub && l.bySub[sub] >= l.perSubject {
		return nil, false
	}
	l.total++
	if perSub {
		l.bySub[sub]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if perSub {
				if l.bySub[sub]--; l.bySub[sub] <= 0 {
					delete(l.bySub, sub)
				}
			}
		})
	}, true
}

func (l *limiter) counts(sub string) (total, forSub int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.bySub[sub]
}
