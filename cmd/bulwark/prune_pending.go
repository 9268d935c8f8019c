package main

// Placeholders replaced by prune.go and forget.go.
func repoPruneCommand() *Command { return &Command{Name: "prune", Summary: "(pending)"} }
func forgetCommand() *Command    { return &Command{Name: "forget", Summary: "(pending)"} }
