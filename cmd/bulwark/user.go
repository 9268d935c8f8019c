package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

func userCommand() *Command {
	return &Command{
		Name:    "user",
		Summary: "list, create, change and delete accounts",
		Usage:   "bulwark user list|show|add|set|passwd|unlock|delete [FLAGS] [NAME]",
		Long: `Needs the access module: read to list and show, write to change, operate to
unlock. Tags (--tag team=blue) put an account in the scope of grants such as
"access write on team=blue". A role may be given until a time:
--role auditor@2026-12-31 or --role auditor@72h.`,
		Subs: []*Command{userListCommand(), userShowCommand(), userAddCommand(), userSetCommand(),
			userPasswdCommand(), userUnlockCommand(), userDeleteCommand()},
	}
}

// userPath is the API path of one user.
func userPath(name string) string { return "/api/v1/users/" + url.PathEscape(name) }

// parseRoleBindings reads --role values, "name" or "name@expiry".
func parseRoleBindings(list []string, now time.Time) ([]access.RoleBinding, error) {
	out := []access.RoleBinding{}
	seen := map[string]bool{}
	for _, v := range list {
		name, exp, hasExp := strings.Cut(v, "@")
		if name == "" {
			return nil, usageError("--role %q: give a role name, optionally with @EXPIRY (auditor@2026-12-31, auditor@72h)", v)
		}
		if seen[name] {
			return nil, usageError("--role %q: role %q given twice", v, name)
		}
		seen[name] = true
		b := access.RoleBinding{Role: name}
		if hasExp {
			t, err := parseExpiry(exp, now)
			if err != nil {
				return nil, usageError("--role %q: %v", v, err)
			}
			b.ExpiresAt = t
		}
		out = append(out, b)
	}
	return out, nil
}

// bindingsText shows role bindings: "auditor (until 2026-12-31 00:00Z), ops".
func bindingsText(bs []access.RoleBinding, now time.Time) string {
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		s := b.Role
		switch {
		case b.Expired(now):
			s += " (expired " + fmtTime(b.ExpiresAt) + ")"
		case !b.ExpiresAt.IsZero():
			s += " (until " + fmtTime(b.ExpiresAt) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func tagsText(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

func userStatus(u identity.User) string {
	switch {
	case u.Disabled:
		return "disabled"
	case u.Locked:
		if u.LockedReason != "" {
			return "locked (" + u.LockedReason + ")"
		}
		return "locked"
	}
	return "active"
}

func userMFA(u identity.User) string {
	var parts []string
	if u.TOTPEnabled {
		parts = append(parts, "TOTP")
	}
	if u.WebAuthnKeys == 1 {
		parts = append(parts, "1 security key")
	} else if u.WebAuthnKeys > 1 {
		parts = append(parts, fmt.Sprintf("%d security keys", u.WebAuthnKeys))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func userListCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "list",
		Summary:  "list the accounts you may see",
		Usage:    "bulwark user list [--json]",
		Long:     "Fetches every page; --json prints {\"items\": [...]} with the API's user objects.",
		Examples: []string{"bulwark user list", "bulwark user list --json | jq -r '.items[].username'"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("user list takes no arguments")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			raws, err := listAll(ctx, c, "/api/v1/users", nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(e.Stdout, raws)
			}
			now := time.Now()
			var rows [][]string
			for _, r := range raws {
				var u identity.User
				if err := json.Unmarshal(r, &u); err != nil {
					return fmt.Errorf("unexpected user in the answer: %w", err)
				}
				rows = append(rows, []string{u.Username, u.DisplayName, u.Email, userStatus(u), userMFA(u), bindingsText(u.Roles, now), tagsText(u.Tags)})
			}
			return table(e.Stdout, []string{"USERNAME", "NAME", "EMAIL", "STATUS", "2FA", "ROLES", "TAGS"}, rows)
		},
	}
}

// maxListPages bounds pagination so a misbehaving server cannot keep the
// client looping forever.
const maxListPages = 1000

// listAll follows a paginated list to its end and returns the raw items.
func listAll(ctx context.Context, c *apiClient, path string, q url.Values) ([]json.RawMessage, error) {
	if q == nil {
		q = url.Values{}
	}
	// No limit parameter: the server's default page size is always within
	// its configured maximum, which a fixed number might exceed.
	var items []json.RawMessage
	for range maxListPages {
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if _, err := c.call(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
		if page.Next == "" || page.Next == q.Get("after") {
			return items, nil
		}
		q.Set("after", page.Next)
	}
	return nil, fmt.Errorf("GET %s: more than %d pages; the server keeps answering with a next page", path, maxListPages)
}

// printItems prints raw items in the API's list envelope.
func printItems(w io.Writer, items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(map[string]any{"items": items}, "", "  ")
	if err != nil {
		return err
	}
	return printRaw(w, b)
}

func showUser(w io.Writer, u identity.User) {
	now := time.Now()
	fmt.Fprintf(w, "username:      %s\n", clean(u.Username))
	fmt.Fprintf(w, "display name:  %s\n", clean(orDash(u.DisplayName)))
	fmt.Fprintf(w, "email:         %s\n", clean(orDash(u.Email)))
	fmt.Fprintf(w, "status:        %s\n", clean(userStatus(u)))
	fmt.Fprintf(w, "2FA:           %s\n", userMFA(u))
	fmt.Fprintf(w, "roles:         %s\n", clean(orDash(bindingsText(u.Roles, now))))
	fmt.Fprintf(w, "tags:          %s\n", clean(orDash(tagsText(u.Tags))))
	fmt.Fprintf(w, "created:       %s\n", fmtTime(u.CreatedAt))
	fmt.Fprintf(w, "password set:  %s\n", fmtTime(u.PasswordChangedAt))
}

func userShowCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "show",
		Summary:  "show one account: status, second factors, roles, tags",
		Usage:    "bulwark user show NAME [--json]",
		Examples: []string{"bulwark user show alice", "bulwark user show alice --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user show needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var u identity.User
			raw, err := c.call(ctx, http.MethodGet, userPath(args[0]), nil, nil, &u)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			showUser(e.Stdout, u)
			return nil
		},
	}
}

// generatePassword returns 128 random bits as 26 base32 characters.
func generatePassword() string { return strings.ToLower(rand.Text()) }

// readNewPassword reads a new password: from stdin with --password-stdin or
// when stdin is not a terminal, otherwise typed twice without echo.
func readNewPassword(ctx context.Context, e *Env, fromStdin bool, who string) (string, error) {
	lines := newLineReader(e)
	if fromStdin || !isTerminal(e.Stdin) {
		pw, err := lines.readLine(ctx)
		if errors.Is(err, io.EOF) {
			return "", usageError("no password on standard input")
		}
		if err != nil {
			return "", err
		}
		if pw == "" {
			return "", usageError("empty password on standard input")
		}
		return pw, nil
	}
	pw, err := lines.secret(ctx, "New password for "+who+": ")
	if err != nil {
		return "", err
	}
	again, err := lines.secret(ctx, "Repeat it: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", usageError("the two passwords differ; nothing was changed")
	}
	if pw == "" {
		return "", usageError("empty password; nothing was changed")
	}
	return pw, nil
}

func userAddCommand() *Command {
	var f clientFlags
	var roles, tags stringList
	var displayName, email string
	var passwordStdin, asJSON bool
	return &Command{
		Name:    "add",
		Summary: "create an account, with a generated password unless one is given",
		Usage:   "bulwark user add NAME [--role R[@EXPIRY]]... [--tag k=v]... [--display-name TEXT] [--email ADDR] [--password-stdin] [--json]",
		Long: `Without --password-stdin a random password is generated and printed once:
hand it over safely. With --json the API's user object is printed, with a
"generated_password" field added when one was generated.`,
		Examples: []string{
			"bulwark user add alice --role operator --tag team=blue --display-name 'Alice Doe' --email alice@example.net",
			"bulwark user add auditor1 --role auditor@2026-12-31",
			"printf '%s\\n' \"$PW\" | bulwark user add ci --role operator@720h --password-stdin",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&roles, "role", "give role `R`, or R@EXPIRY (R@2026-12-31, R@72h); repeatable")
			fs.Var(&tags, "tag", "set tag `KEY=VALUE`; repeatable")
			fs.StringVar(&displayName, "display-name", "", "the person's name, as `TEXT`")
			fs.StringVar(&email, "email", "", "the person's e-mail `ADDR`")
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user add needs exactly one NAME")
			}
			name := args[0]
			bindings, err := parseRoleBindings(roles, time.Now())
			if err != nil {
				return err
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var password, generated string
			if passwordStdin {
				if password, err = readNewPassword(ctx, e, true, name); err != nil {
					return err
				}
			} else {
				generated = generatePassword()
				password = generated
			}
			body := map[string]any{"username": name, "password": password, "roles": bindings}
			if displayName != "" {
				body["display_name"] = displayName
			}
			if email != "" {
				body["email"] = email
			}
			if tagMap != nil {
				body["tags"] = tagMap
			}
			var u identity.User
			raw, err := c.call(ctx, http.MethodPost, "/api/v1/users", nil, body, &u)
			if err != nil {
				return fmt.Errorf("create user %s: %w", name, err)
			}
			if asJSON {
				if generated != "" {
					var m map[string]json.RawMessage
					if err := json.Unmarshal(raw, &m); err != nil {
						return err
					}
					m["generated_password"], _ = json.Marshal(generated)
					if raw, err = json.MarshalIndent(m, "", "  "); err != nil {
						return err
					}
				}
			} else {
				fmt.Fprintf(e.Stdout, "Created user %s", clean(u.Username))
				if len(u.Roles) > 0 {
					fmt.Fprintf(e.Stdout, " with roles %s", clean(bindingsText(u.Roles, time.Now())))
				}
				fmt.Fprintln(e.Stdout, ".")
			}
			if generated != "" {
				fmt.Fprintln(e.Stderr, "warning: the generated password is shown once; hand it over safely and ask the user to change it")
				if !asJSON {
					fmt.Fprintf(e.Stdout, "password: %s\n", generated)
				}
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			return nil
		},
	}
}

func userSetCommand() *Command {
	var f clientFlags
	var roles, addRoles, removeRoles, tags, untags stringList
	var displayName, email string
	var disable, enable, noRoles, asJSON bool
	return &Command{
		Name:    "set",
		Summary: "change an account's roles, tags, profile or status",
		Usage:   "bulwark user set NAME [--role R[@EXPIRY]]... [--add-role R] [--remove-role R] [--tag k=v]... [--untag k] [--display-name TEXT] [--email ADDR] [--disable|--enable]",
		Long: `--role replaces the account's roles with the ones given (--no-roles removes
all); --add-role and --remove-role change one at a time and keep the others.
--tag sets or changes one tag and --untag removes one; the other tags stay.
A disabled account cannot sign in and its sessions and tokens stop working.`,
		Examples: []string{
			"bulwark user set alice --role operator --role auditor@72h",
			"bulwark user set alice --add-role billing@2026-12-31 --tag team=red",
			"bulwark user set bob --disable",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&roles, "role", "new role list: role `R` or R@EXPIRY; repeatable")
			fs.BoolVar(&noRoles, "no-roles", false, "remove every role")
			fs.Var(&addRoles, "add-role", "add role `R` (or R@EXPIRY), keeping the others; repeatable")
			fs.Var(&removeRoles, "remove-role", "remove role `R`, keeping the others; repeatable")
			fs.Var(&tags, "tag", "set tag `KEY=VALUE`; repeatable")
			fs.Var(&untags, "untag", "remove the tag `KEY`; repeatable")
			fs.StringVar(&displayName, "display-name", "", "new display name `TEXT` (empty string clears)")
			fs.StringVar(&email, "email", "", "new e-mail `ADDR` (empty string clears)")
			fs.BoolVar(&disable, "disable", false, "disable the account")
			fs.BoolVar(&enable, "enable", false, "enable a disabled account")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user set needs exactly one NAME")
			}
			name := args[0]
			if disable && enable {
				return usageError("give --disable or --enable, not both")
			}
			if (len(roles) > 0 || noRoles) && (len(addRoles) > 0 || len(removeRoles) > 0) {
				return usageError("--role/--no-roles replace the list; do not mix them with --add-role/--remove-role")
			}
			if len(roles) > 0 && noRoles {
				return usageError("give --role or --no-roles, not both")
			}
			now := time.Now()
			newRoles, err := parseRoleBindings(roles, now)
			if err != nil {
				return err
			}
			added, err := parseRoleBindings(addRoles, now)
			if err != nil {
				return err
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			patch := map[string]any{}
			if flagSet(fs, "display-name") {
				patch["display_name"] = displayName
			}
			if flagSet(fs, "email") {
				patch["email"] = email
			}
			if disable || enable {
				patch["disabled"] = disable
			}
			if len(roles) > 0 || noRoles {
				patch["roles"] = newRoles
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			if len(added) > 0 || len(removeRoles) > 0 || len(tagMap) > 0 || len(untags) > 0 {
				// The API replaces roles and tags whole: start from the
				// current ones.
				var cur identity.User
				if _, err := c.call(ctx, http.MethodGet, userPath(name), nil, nil, &cur); err != nil {
					return err
				}
				if len(added) > 0 || len(removeRoles) > 0 {
					patch["roles"], err = editBindings(cur.Roles, added, removeRoles)
					if err != nil {
						return err
					}
				}
				if len(tagMap) > 0 || len(untags) > 0 {
					t := map[string]string{}
					for k, v := range cur.Tags {
						t[k] = v
					}
					for k, v := range tagMap {
						t[k] = v
					}
					for _, k := range untags {
						if _, ok := t[k]; !ok {
							return usageError("--untag %q: %s has no such tag (tags: %s)", k, name, orDash(tagsText(cur.Tags)))
						}
						delete(t, k)
					}
					patch["tags"] = t
				}
			}
			if len(patch) == 0 {
				return usageError("nothing to change: give --role, --add-role, --remove-role, --tag, --untag, --display-name, --email, --disable or --enable")
			}
			var u identity.User
			raw, err := c.call(ctx, http.MethodPatch, userPath(name), nil, patch, &u)
			if err != nil {
				return fmt.Errorf("change user %s: %w", name, err)
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			fmt.Fprintf(e.Stdout, "Updated user %s.\n", clean(u.Username))
			showUser(e.Stdout, u)
			return nil
		},
	}
}

// editBindings applies --add-role and --remove-role to the current roles.
// An added role already held gets the new expiry.
func editBindings(cur, add []access.RoleBinding, remove []string) ([]access.RoleBinding, error) {
	out := make([]access.RoleBinding, 0, len(cur)+len(add))
	for _, b := range cur {
		if slices.Contains(remove, b.Role) || slices.ContainsFunc(add, func(a access.RoleBinding) bool { return a.Role == b.Role }) {
			continue
		}
		out = append(out, access.RoleBinding{Role: b.Role, ExpiresAt: b.ExpiresAt})
	}
	for _, r := range remove {
		if !slices.ContainsFunc(cur, func(b access.RoleBinding) bool { return b.Role == r }) {
			return nil, usageError("--remove-role %q: the account does not have that role", r)
		}
	}
	return append(out, add...), nil
}

func userPasswdCommand() *Command {
	var f clientFlags
	var passwordStdin bool
	return &Command{
		Name:    "passwd",
		Summary: "set an account's password",
		Usage:   "bulwark user passwd NAME [--password-stdin]",
		Long:    "On a terminal the password is typed twice without echo; otherwise it is read from the first line of standard input.",
		Examples: []string{
			"bulwark user passwd alice",
			"printf '%s\\n' \"$NEWPW\" | bulwark user passwd alice --password-stdin",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user passwd needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			pw, err := readNewPassword(ctx, e, passwordStdin, args[0])
			if err != nil {
				return err
			}
			if _, err := c.call(ctx, http.MethodPost, userPath(args[0])+"/password", nil, map[string]string{"password": pw}, nil); err != nil {
				return fmt.Errorf("set the password of %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Password of %s changed.\n", clean(args[0]))
			return nil
		},
	}
}

func userUnlockCommand() *Command {
	var f clientFlags
	return &Command{
		Name:     "unlock",
		Summary:  "lift the lockout after too many failed sign-ins",
		Usage:    "bulwark user unlock NAME",
		Examples: []string{"bulwark user unlock alice"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user unlock needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			if _, err := c.call(ctx, http.MethodPost, userPath(args[0])+"/unlock", nil, nil, nil); err != nil {
				return fmt.Errorf("unlock %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Unlocked %s.\n", clean(args[0]))
			return nil
		},
	}
}

func userDeleteCommand() *Command {
	var f clientFlags
	var yes bool
	return &Command{
		Name:     "delete",
		Summary:  "delete an account (its sessions and tokens end)",
		Usage:    "bulwark user delete NAME [--yes]",
		Long:     "Asks for confirmation on a terminal; elsewhere --yes is required. Prefer 'user set NAME --disable' to keep the account's history readable.",
		Examples: []string{"bulwark user delete bob", "bulwark user delete bob --yes"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("user delete needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			if err := confirm(ctx, e, yes, "delete user "+clean(args[0])); err != nil {
				return err
			}
			if _, err := c.call(ctx, http.MethodDelete, userPath(args[0]), nil, nil, nil); err != nil {
				return fmt.Errorf("delete user %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Deleted user %s.\n", clean(args[0]))
			return nil
		},
	}
}
