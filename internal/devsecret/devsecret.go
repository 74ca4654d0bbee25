// Package devsecret holds the JWT secret that Caddyfile.example and
// cmd/token fall back to when SSEGATE_JWT_SECRET is not set, so that the
// quick start works with no setup. Anyone who reads the README knows it:
// the gateway warns when it is in use where others can connect.
package devsecret

// Secret is the development default of SSEGATE_JWT_SECRET.
const Secret = "ssegate-dev-secret-not-for-production-use"
