package main

// Placeholder replaced by repair.go.
func repoRepairCommand() *Command { return &Command{Name: "repair", Summary: "(pending)"} }
