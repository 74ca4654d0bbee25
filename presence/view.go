package presence

import (
	"encoding/base64"
	"sort"
	"strings"
	"sync"
	"time"
)

// KV keys. Channels and subs are base64url-encoded: KV keys allow fewer
// characters than either.
//
//	c.<channel>.<gateway>  a gateway's entry for a channel, with a TTL
//	m.<channel>.<sub>      the gateways holding a user on a channel
const (
	entryPrefix  = "c."
	memberPrefix = "m."
)

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func entryKey(ch, gateway string) string { return entryPrefix + enc(ch) + "." + gateway }

func memberKey(m member) string { return memberPrefix + enc(m.ch) + "." + enc(m.sub) }

// parseEntryKey returns the channel and gateway of an entry key.
func parseEntryKey(key string) (ch, gateway string, ok bool) {
	rest, found := strings.CutPrefix(key, entryPrefix)
	if !found {
		return "", "", false
	}
	c, gw, found := strings.Cut(rest, ".")
	if !found {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	return string(b), gw, true
}

// view is every gateway's last entry per channel, as the KV watch
// delivered them.
type view struct {
	mu    sync.Mutex
	chans map[string]map[string]*seen
}

type seen struct {
	e   *entry
	at  time.Time // when the entry was stored, by the server's clock
	rev uint64
}

func newView() *view { return &view{chans: map[string]map[string]*seen{}} }

func (v *view) set(ch, gw string, s *seen) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.chans[ch]
	if m == nil {
		m = map[string]*seen{}
		v.chans[ch] = m
	}
	m[gw] = s
}

// remove forgets an entry and returns it, or nil if it was not known.
func (v *view) remove(ch, gw string) *seen {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.chans[ch][gw]
	if s != nil {
		delete(v.chans[ch], gw)
		if len(v.chans[ch]) == 0 {
			delete(v.chans, ch)
		}
	}
	return s
}

// stale removes and returns the entries of other gateways stored before
// cutoff: their gateway stopped refreshing them.
func (v *view) stale(self string, cutoff time.Time) []*seen {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*seen
	for ch, m := range v.chans {
		for gw, s := range m {
			if gw != self && s.at.Before(cutoff) {
				out = append(out, s)
				delete(m, gw)
			}
		}
		if len(m) == 0 {
			delete(v.chans, ch)
		}
	}
	return out
}

// others are the live entries of other gateways for ch.
func (v *view) others(self, ch string, cutoff time.Time) []*entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*entry
	for gw, s := range v.chans[ch] {
		if gw != self && !s.at.Before(cutoff) {
			out = append(out, s.e)
		}
	}
	return out
}

// Answer is the endpoint's answer for one channel.
type Answer struct {
	Channel     string `json:"channel"`
	Connections int    `json:"connections"`
	Users       []User `json:"users"`
}

// User is one user's connections on the channel; IDs only for control.
type User struct {
	Sub         string   `json:"sub"`
	Connections int      `json:"connections"`
	IDs         []string `json:"connection_ids,omitempty"`
}

// sum adds up entries; withIDs keeps the connection ids.
func sum(ch string, es []*entry, withIDs bool) Answer {
	a := Answer{Channel: ch, Users: []User{}}
	idx := map[string]int{}
	for _, e := range es {
		if e == nil {
			continue
		}
		a.Connections += e.Connections
		for sub, ids := range e.Users {
			i, ok := idx[sub]
			if !ok {
				i = len(a.Users)
				idx[sub] = i
				a.Users = append(a.Users, User{Sub: sub})
			}
			a.Users[i].Connections += len(ids)
			if withIDs {
				a.Users[i].IDs = append(a.Users[i].IDs, ids...)
			}
		}
	}
	sort.Slice(a.Users, func(i, j int) bool { return a.Users[i].Sub < a.Users[j].Sub })
	for _, u := range a.Users {
		sort.Strings(u.IDs)
	}
	return a
}
