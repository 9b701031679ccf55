//go:build !amd64 || purego

package search

func kernel() (func([]int16, []int8, []int32), bool) { return dotsGo, false }
