// Package freeport picks loopback TCP ports for the servers a test or a
// benchmark starts and binds later (cluster routes, child processes). A
// port the kernel hands out for "127.0.0.1:0" comes from its ephemeral
// range, from which every outgoing connection takes its own port too: one
// released for a server to bind a moment later can be taken meanwhile
// ("address already in use"). So ports are picked at random below that
// range, where only another picker can collide, and each is checked
// bindable when picked.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port picked; the range ends below the ephemeral one.
const lowest = 10000

// Take returns n distinct loopback ports free when it returns.
func Take(n int) ([]int, error) {
	top := ephemeralLow()
	if top-lowest < 1000 {
		return kernelPorts(n)
	}
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no free loopback port found in %d-%d", lowest, top-1)
		}
		p := lowest + rand.IntN(top-lowest)
		if seen[p] {
			continue
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// kernelPorts asks the kernel, for a system whose ephemeral range leaves
// too little below it.
func kernelPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
