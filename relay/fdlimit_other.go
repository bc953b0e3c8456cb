//go:build !unix

package relay

func fdLimit() uint64 { return 0 }
