package config

import (
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/report/practice"
)

// Report configures the security-practices report (internal/report): which
// practices the public page /trust shows. See docs/report.md.
type Report struct {
	// Publish are the ids of the practices shown without login at /trust
	// (status, date of the evidence and a public summary, never internal
	// details). Empty: /trust answers 404.
	Publish []string `yaml:"publish"`
}

func (r Report) validate(c *checker) {
	seen := map[string]int{}
	for i, id := range r.Publish {
		field := fmt.Sprintf("publish[%d]", i)
		if j, ok := seen[id]; ok {
			c.errorf(field, "%q is also publish[%d]", id, j)
			continue
		}
		seen[id] = i
		if !practice.Known(id) {
			c.errorf(field, "%q is not a practice id (known: %s)", id, strings.Join(practice.IDs(), ", "))
		}
	}
}
