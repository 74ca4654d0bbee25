// Package auth decides who may read which channels, and who may publish.
//
// A Gate is built from a Config (the handler's `auth` block) and answers
// every request before a stream byte is written:
//
//   - Scrub removes a ticket from the request before anything can log it;
//   - Admit authenticates a reader (ticket, cookie, bearer JWT, or an
//     auth_url callout), checks the requested channels against the
//     credential's patterns and the public ones, and holds a connection
//     slot until the Admission is released;
//   - ServeTicket mints the short-lived, single-use tickets that let an
//     EventSource, which cannot send headers, carry a credential in its URL;
//   - Publishers authorizes the publish endpoint's callers, by bearer key
//     or by a JWT's "publish" claim;
//   - ApplyCORS and Preflight answer cross-origin callers.
//
// A refusal is an *Error: a status, one of the Code* constants (the public
// contract every endpoint of the gateway writes its errors with) and a
// detail that never carries a credential. ValidChannel is the gateway's
// one rule for channel names.
//
// JWTs are verified with golang-jwt and JWKS with jwx; nothing here
// implements cryptography.
package auth
