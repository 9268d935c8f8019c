package main

// Placeholders replaced by check.go, prune.go and repair.go.

func repoCheckCommand() *Command  { return &Command{Name: "check", Summary: "(pending)"} }
func repoPruneCommand() *Command  { return &Command{Name: "prune", Summary: "(pending)"} }
func repoRepairCommand() *Command { return &Command{Name: "repair", Summary: "(pending)"} }
func forgetCommand() *Command     { return &Command{Name: "forget", Summary: "(pending)"} }
