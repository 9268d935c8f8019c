package dump

import (
	"context"
	"fmt"
	"regexp"
)

// Scratch databases: restore tests restore dumps into a fresh database on
// a server the user names, check them, and drop them. Names are generated
// by the caller and must match scratchName, so they need no quoting beyond
// the identifier quotes.

var scratchName = regexp.MustCompile(`^bulwark_restore_test_[a-z0-9_]{1,40}$`)

// ScratchPostgres creates the empty database name on the PostgreSQL server
// dsn points at and returns a DSN for it and a function that drops it
// (with every connection to it).
func ScratchPostgres(ctx context.Context, dsn, name string, o Options) (string, func(context.Context) error, error) {
	if !scratchName.MatchString(name) {
		return "", nil, fmt.Errorf("scratch database %q: want bulwark_restore_test_ and lower-case letters, digits or _", name)
	}
	ci, err := ParsePGDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	psql, err := o.lookTool(pgPackage, "psql")
	if err != nil {
		return "", nil, err
	}
	maint := ci.Clone()
	maint.Set("dbname", pgMaintDB)
	run := func(ctx context.Context, sql string) error {
		conn, env := pgConn(maint, o.env())
		_, err := output(ctx, "psql ("+sql+")", psql, []string{"--no-psqlrc", "--no-password", "--set=ON_ERROR_STOP=1",
			"--dbname=" + conn, "--command=" + sql}, env)
		return err
	}
	if err := run(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", nil, err
	}
	target := ci.Clone()
	target.Set("dbname", name)
	drop := func(ctx context.Context) error { return run(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) }
	return target.String(), drop, nil
}

// ScratchMySQL is ScratchPostgres for MariaDB/MySQL.
func ScratchMySQL(ctx context.Context, dsn, name string, o Options) (string, func(context.Context) error, error) {
	if !scratchName.MatchString(name) {
		return "", nil, fmt.Errorf("scratch database %q: want bulwark_restore_test_ and lower-case letters, digits or _", name)
	}
	d, err := ParseMyDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	client, err := o.lookTool(myPackage, "mariadb", "mysql")
	if err != nil {
		return "", nil, err
	}
	server := *d
	server.Database = ""
	run := func(ctx context.Context, sql string) error {
		cnf, cleanup, err := withOptionFile(&server)
		if err != nil {
			return err
		}
		defer cleanup()
		_, err = output(ctx, "mariadb ("+sql+")", client, []string{"--defaults-extra-file=" + cnf, "--batch", "--execute=" + sql}, o.env())
		return err
	}
	if err := run(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		return "", nil, err
	}
	target := *d
	target.Database = name
	drop := func(ctx context.Context) error { return run(ctx, "DROP DATABASE IF EXISTS `"+name+"`") }
	// url, not String: String hides the password (the restore would log
	// in with "xxxxx") and drops the TLS options (it would connect
	// without the CA and verification the DSN asks for).
	return target.url(), drop, nil
}
