package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
)

// Names of the files a PostgreSQL backup puts into its snapshot.
const (
	PGDir         = "postgres"             // directory of the snapshot holding the dumps
	PGGlobalsFile = "postgres/globals.sql" // pg_dumpall --globals-only
	pgDumpSuffix  = ".dump"                // postgres/DBNAME.dump: pg_dump -Fc
	pgPackage     = "postgresql-client"    // the Debian package of the tools
	pgMaintDB     = "postgres"             // where the list of databases is read
	pgListQuery   = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"
)

// PGOptions tune a PostgreSQL dump.
type PGOptions struct {
	Options
	// NoGlobals leaves out roles and tablespaces (pg_dumpall
	// --globals-only), which need a superuser to read in full.
	NoGlobals bool
}

// pgConn prepares the command-line connection string and environment for
// ci: the password moves into PGPASSWORD, so argv never holds it.
func pgConn(ci *PGConnInfo, env []string) (string, []string) {
	rest, pw, ok := ci.WithoutPassword()
	if ok {
		env = append(env, "PGPASSWORD="+pw)
	}
	return rest.String(), env
}

// PGDumpFileName is the snapshot file name of database db's dump.
func PGDumpFileName(db string) string { return PGDir + "/" + escapeName(db) + pgDumpSuffix }

// PostgresDatabases returns the databases a DSN selects: the one it names,
// or, without a dbname, every database that accepts connections and is not
// a template (read from the "postgres" database).
func PostgresDatabases(ctx context.Context, dsn string, o PGOptions) ([]string, error) {
	ci, err := ParsePGDSN(dsn)
	if err != nil {
		return nil, err
	}
	return pgDatabases(ctx, ci, o)
}

func pgDatabases(ctx context.Context, ci *PGConnInfo, o PGOptions) ([]string, error) {
	if db := ci.Database(); db != "" {
		return []string{db}, nil
	}
	psql, err := o.lookTool(pgPackage, "psql")
	if err != nil {
		return nil, err
	}
	c := ci.Clone()
	c.Set("dbname", pgMaintDB)
	conn, env := pgConn(c, o.env())
	out, err := output(ctx, "psql (listing databases)", psql,
		[]string{"--no-psqlrc", "--no-password", "--no-align", "--tuples-only", "--record-separator-zero",
			"--set=ON_ERROR_STOP=1", "--dbname=" + conn, "--command=" + pgListQuery}, env)
	if err != nil {
		return nil, err
	}
	var dbs []string
	for _, name := range strings.Split(out, "\x00") {
		name = strings.TrimSuffix(name, "\n")
		if name != "" {
			dbs = append(dbs, name)
		}
	}
	if len(dbs) == 0 {
		return nil, errors.New("postgres: the server lists no database to back up")
	}
	return dbs, nil
}

// PostgresStreams returns the streams of a PostgreSQL backup: one pg_dump
// custom-format archive per database (PGDumpFileName), then the globals
// (unless o.NoGlobals) as PGGlobalsFile. The databases come first because
// pg_dump explains a connection failure and pg_dumpall does not. Nothing runs until a stream is
// opened, except listing the databases when the DSN names none.
//
// pg_dump runs with --format=custom --compress=0: the repository
// compresses (zstd) and deduplicates, which an already-compressed archive
// would defeat, so unchanged tables cost nothing in the next snapshot.
func PostgresStreams(ctx context.Context, dsn string, o PGOptions) ([]archiver.Stream, error) {
	ci, err := ParsePGDSN(dsn)
	if err != nil {
		return nil, err
	}
	pgDump, err := o.lookTool(pgPackage, "pg_dump")
	if err != nil {
		return nil, err
	}
	var pgDumpall string
	if !o.NoGlobals {
		if pgDumpall, err = o.lookTool(pgPackage, "pg_dumpall"); err != nil {
			return nil, err
		}
	}
	dbs, err := pgDatabases(ctx, ci, o)
	if err != nil {
		return nil, err
	}
	var streams []archiver.Stream
	for _, db := range dbs {
		c := ci.Clone()
		c.Set("dbname", db)
		conn, env := pgConn(c, o.env())
		streams = append(streams, archiver.Stream{Name: PGDumpFileName(db), Open: func(ctx context.Context) (io.ReadCloser, error) {
			return startReader(ctx, fmt.Sprintf("pg_dump of database %q", db), pgDump,
				[]string{"--format=custom", "--compress=0", "--no-password", "--dbname=" + conn}, env, nil)
		}})
	}
	if !o.NoGlobals {
		c := ci.Clone()
		first := c.Database()
		if first == "" {
			first = pgMaintDB
		}
		c.Del("dbname") // pg_dumpall ignores it; -l names the first database
		conn, env := pgConn(c, o.env())
		streams = append(streams, archiver.Stream{Name: PGGlobalsFile, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return startReader(ctx, "pg_dumpall --globals-only", pgDumpall,
				[]string{"--globals-only", "--no-password", "--dbname=" + conn, "--database=" + first}, env, nil)
		}})
	}
	return streams, nil
}

// BackupPostgres dumps what dsn selects into one snapshot of r (see
// PostgresStreams). A failed dump leaves no snapshot.
func BackupPostgres(ctx context.Context, r *repo.Repository, dsn string, o PGOptions, ao archiver.Options) (*archiver.Result, error) {
	streams, err := PostgresStreams(ctx, dsn, o)
	if err != nil {
		return nil, err
	}
	res, err := archiver.BackupStreams(ctx, r, streams, ao)
	if err != nil {
		return nil, fmt.Errorf("postgres backup failed, no snapshot was saved: %w", err)
	}
	return res, nil
}

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Options
	// Includes, when not empty, restricts the restore to these snapshot
	// paths ("/postgres/app.dump").
	Includes []string
}

// Restored is one dump fed into a database.
type Restored struct {
	Path     string `json:"path"`     // in the snapshot
	Database string `json:"database"` // "" for a dump of every database
	Bytes    int64  `json:"bytes"`
}

// RestorePostgres feeds the pg_dump archives of snapshot s into the server
// of dsn with pg_restore, streaming them from the repository.
//
// When dsn names a database, the snapshot (after Includes) must hold
// exactly one archive; it is restored into that existing database with
// --clean --if-exists --no-owner --single-transaction: objects the archive
// holds are dropped and recreated, owned by the DSN's user, and a failure
// rolls everything back, leaving the database as it was. Privileges
// (GRANTs) are restored, so the roles they name must exist.
//
// When dsn names no database, every archive is restored with --create
// --clean --if-exists through the "postgres" database: each database is
// dropped if it exists, recreated under its own name with its owner, and
// filled (not in one transaction: --create cannot be).
//
// The globals (roles, tablespaces) are never applied: replaying them
// would reset role passwords on the target server. Apply them yourself
// with psql from PGGlobalsFile when rebuilding a server.
func RestorePostgres(ctx context.Context, r *repo.Repository, s *repo.Snapshot, dsn string, o RestoreOptions) ([]Restored, error) {
	ci, err := ParsePGDSN(dsn)
	if err != nil {
		return nil, err
	}
	pgRestore, err := o.lookTool(pgPackage, "pg_restore")
	if err != nil {
		return nil, err
	}
	files, err := dumpFiles(ctx, r, s, PGDir, pgDumpSuffix, "", o.Includes)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("snapshot %s holds no PostgreSQL dump (no /%s/*%s; was it made with --postgres?)", repo.Short(s.ID), PGDir, pgDumpSuffix)
	}
	target := ci.Database()
	if target != "" && len(files) > 1 {
		return nil, fmt.Errorf("snapshot %s holds %d PostgreSQL dumps (%s) and the DSN names one database: choose one with --include PATH, or give a DSN without dbname to restore each into its own database",
			repo.Short(s.ID), len(files), joinPaths(files))
	}
	var done []Restored
	for _, f := range files {
		db, err := unescapeName(strings.TrimSuffix(path.Base(f.Path), pgDumpSuffix))
		if err != nil {
			return done, fmt.Errorf("%s: not a dump file name: %w", f.Path, err)
		}
		c := ci.Clone()
		args := []string{"--no-password", "--clean", "--if-exists"}
		what := fmt.Sprintf("pg_restore of %s into database %q", f.Path, target)
		if target != "" {
			args = append(args, "--no-owner", "--single-transaction")
		} else {
			c.Set("dbname", pgMaintDB)
			args = append(args, "--create")
			what = fmt.Sprintf("pg_restore --create of %s (database %q)", f.Path, db)
		}
		conn, env := pgConn(c, o.env())
		args = append(args, "--dbname="+conn)
		n, err := feedFile(ctx, r, &f, what, pgRestore, args, env)
		if err != nil {
			return done, err
		}
		rdb := target
		if rdb == "" {
			rdb = db
		}
		done = append(done, Restored{Path: f.Path, Database: rdb, Bytes: n})
	}
	return done, nil
}

// dumpFiles lists the files of dir ending in suffix, except skip, and
// keeps only those in includes when given.
func dumpFiles(ctx context.Context, r *repo.Repository, s *repo.Snapshot, dir, suffix, skip string, includes []string) ([]SnapshotFile, error) {
	all, err := ListFiles(ctx, r, s, dir)
	if err != nil {
		return nil, err
	}
	var out []SnapshotFile
	for _, f := range all {
		if !strings.HasSuffix(f.Path, suffix) || f.Path == "/"+skip {
			continue
		}
		if len(includes) > 0 && !included(f.Path, includes) {
			continue
		}
		out = append(out, f)
	}
	if len(includes) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("--include %s matches no dump in snapshot %s", strings.Join(includes, ", "), repo.Short(s.ID))
	}
	return out, nil
}

func included(p string, includes []string) bool {
	for _, inc := range includes {
		inc = "/" + strings.Trim(inc, "/")
		if p == inc || strings.HasPrefix(p, inc+"/") || inc == "/" {
			return true
		}
	}
	return false
}

func joinPaths(files []SnapshotFile) string {
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	return strings.Join(names, ", ")
}

// feedFile streams a snapshot file into a program's standard input.
func feedFile(ctx context.Context, r *repo.Repository, f *SnapshotFile, what, prog string, args, env []string) (int64, error) {
	rd := NewFileReader(ctx, r, &f.Node)
	defer rd.Close()
	cr := &countReader{r: rd}
	err := feed(ctx, what, prog, args, env, cr)
	return cr.n, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
