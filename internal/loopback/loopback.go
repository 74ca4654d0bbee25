// Package loopback finds free loopback ports, for servers that take their
// listen address from config rather than reporting the one they bound
// (Caddy, nats-server clusters).
package loopback

import "net"

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. Each is held until all are found, so none is returned twice.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
