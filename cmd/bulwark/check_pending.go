package main

// Placeholder replaced by check.go.
func repoCheckCommand() *Command { return &Command{Name: "check", Summary: "(pending)"} }
