package app

import (
	"github.com/bulwarkhq/bulwark/internal/audit"
)

func auditEntry(actor, action, resource string, details map[string]any) audit.Entry {
	return audit.Entry{Actor: actor, Action: action, Resource: resource, Result: "ok", Details: details}
}
