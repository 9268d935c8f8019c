// The common-password blocklist.
//
// commonpasswords.txt holds the 10,000 most frequent passwords from real leaks
// (zxcvbn 4.4.2's frequency list, MIT licence, Dan Wheeler / Dropbox), one
// lowercase entry per line after a single '#' header line. It is embedded in
// the binary so the policy works offline, and parsed into a set on first use
// only, so programs that never check a password do not pay for it (~0.5 MB of
// heap). Regenerate it with the program in internal/gencommon; its doc comment
// gives the exact steps.

package identity

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswordSet parses commonPasswordsText once, on first use.
var commonPasswordSet = sync.OnceValue(func() map[string]struct{} {
	lines := strings.Split(commonPasswordsText, "\n")
	set := make(map[string]struct{}, len(lines))
	for _, line := range lines {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = struct{}{}
	}
	return set
})

// IsCommonPassword reports whether pw, ignoring case, is one of the 10,000
// most common passwords. The match is exact: "password1" is on the list in
// its own right, "password" with a suffix of its own choosing is not.
func IsCommonPassword(pw string) bool {
	_, ok := commonPasswordSet()[strings.ToLower(pw)]
	return ok
}
