// Package internal pins the module's dependencies while the packages that use
// them are being written. Delete once every dependency has a real importer.
package internal

import (
	_ "github.com/go-webauthn/webauthn/webauthn"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "golang.org/x/crypto/argon2"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
