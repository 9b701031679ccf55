//go:build !amd64 || purego

package search

func cpuKernels() []qkernel { return nil }
