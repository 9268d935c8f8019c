//go:build !linux

package crypto

// primeHugePages is a Linux-only hint (see hugepages_linux.go).
func primeHugePages(int) {}
