// Package dump backs up PostgreSQL and MariaDB/MySQL databases into a
// Bulwark repository, and restores them, with the databases' own tools.
//
// A backup runs the dump program (pg_dump, pg_dumpall, mariadb-dump) and
// pipes its standard output straight into the repository through
// archiver.BackupStreams: no temporary file holds the data, and the
// snapshot is saved only when every program exited 0, so a failed dump
// never looks like a complete one. A snapshot holds:
//
//	/postgres/globals.sql    pg_dumpall --globals-only (roles, tablespaces)
//	/postgres/DBNAME.dump    pg_dump --format=custom --compress=0, one per database
//	/mysql/DBNAME.sql        mariadb-dump --single-transaction ... DBNAME
//	/mysql/@all.sql          mariadb-dump --single-transaction ... --all-databases
//
// A restore streams those files out of the repository into pg_restore or
// the mariadb client, again without a temporary file.
//
// Secrets never reach a command line (where any local user could read them
// in /proc): a PostgreSQL password travels in PGPASSWORD, a MariaDB one in
// a 0600 client option file in a private temporary directory that is
// removed when the program ends. docs/databases.md is the user's guide.
package dump
