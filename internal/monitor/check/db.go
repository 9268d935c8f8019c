package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Database checks connect afresh on every attempt: a pooled connection
// would hide a server that no longer accepts new ones.

func newPostgres(d config.DBCheck, o Options) (func(context.Context) outcome, error) {
	dsn, err := d.DSN.Resolve(o.Getenv, o.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("postgres.dsn: %w", err)
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres.dsn: %s", redactErr(err, dsn))
	}
	query := d.Query
	if query == "" {
		query = "SELECT 1"
	}
	where := fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
	return func(ctx context.Context) outcome {
		start := time.Now()
		conn, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err != nil {
			return fail("connect to PostgreSQL %s: %s", where, redactErr(err, dsn))
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if _, err := conn.Exec(ctx, query); err != nil {
			return fail("PostgreSQL %s: query %q: %v", where, query, err)
		}
		took := time.Since(start)
		// Replication views show their state columns (status, state)
		// only to roles with pg_read_all_stats (pg_monitor grants it) or
		// superusers; to others they are NULL, which must not read as
		// "stopped" or "no standbys".
		var standby, canSee bool
		var user string
		if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_user,
			pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&standby, &user, &canSee); err != nil {
			return fail("PostgreSQL %s: %v", where, err)
		}
		blind := func(what string) outcome {
			return unknown("PostgreSQL %s: %s cannot be read by role %s: GRANT pg_monitor TO %s", where, what, user, user)
		}
		if !canSee && (standby || d.MinReplicas > 0) {
			return blind(map[bool]string{true: "the standby's WAL receiver", false: "the connected standbys"}[standby]).with("latency_seconds", took.Seconds())
		}
		if !canSee {
			return pass("PostgreSQL %s answers (%s); replication not read: role %s lacks pg_monitor", where, ms(took), user).with("latency_seconds", took.Seconds())
		}
		if standby {
			// Lag: none when everything received is replayed, else the
			// age of the last replayed transaction.
			var lag float64
			var receiver string
			err := conn.QueryRow(ctx, `SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
				ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8,
				COALESCE((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'stopped')`).Scan(&lag, &receiver)
			if err != nil {
				return fail("PostgreSQL %s (standby): %v", where, err)
			}
			oc := pass("PostgreSQL %s is a standby, WAL receiver %s, lag %.1f s (%s)", where, receiver, lag, ms(took))
			switch {
			case receiver != "streaming":
				oc.status = StatusCritical
				oc.msg = fmt.Sprintf("PostgreSQL %s is a standby whose WAL receiver is %s, not streaming", where, receiver)
			case d.MaxLag != 0 && lag > d.MaxLag.D().Seconds():
				oc.status = StatusCritical
				oc.msg = fmt.Sprintf("PostgreSQL %s is a standby %.1f s behind, more than %s", where, lag, d.MaxLag)
			}
			return oc.with("lag_seconds", lag).with("standby", 1).with("latency_seconds", took.Seconds())
		}
		var replicas int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&replicas); err != nil {
			return fail("PostgreSQL %s: %v", where, err)
		}
		oc := pass("PostgreSQL %s is a primary with %d streaming standbys (%s)", where, replicas, ms(took))
		if replicas < d.MinReplicas {
			oc.status = StatusCritical
			oc.msg = fmt.Sprintf("PostgreSQL %s has %d streaming standbys, fewer than %d", where, replicas, d.MinReplicas)
		}
		return oc.with("replicas", float64(replicas)).with("standby", 0).with("latency_seconds", took.Seconds())
	}, nil
}

// mysqlConfig turns Bulwark's one MariaDB/MySQL DSN spelling (the
// database dumps' too: mysql://USER[:PASSWORD]@HOST[:PORT]/DB, see
// internal/continuity/dump) into the driver's configuration.
func mysqlConfig(s string) (*mysql.Config, error) {
	d, err := dump.ParseMyDSN(s)
	if err != nil {
		return nil, err
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.DBName = d.User, d.Password, d.Database
	switch {
	case d.Socket != "":
		c.Net, c.Addr = "unix", d.Socket
	default:
		host, port := d.Host, d.Port
		if host == "" {
			host = "127.0.0.1"
		}
		if port == 0 {
			port = 3306
		}
		c.Net, c.Addr = "tcp", net.JoinHostPort(host, strconv.Itoa(port))
	}
	if d.SSL != nil && *d.SSL || d.SSLCA != "" {
		tc := &tls.Config{ServerName: d.Host, MinVersion: tls.VersionTLS12}
		if d.SSLVerifyServerCert != nil && !*d.SSLVerifyServerCert {
			tc.InsecureSkipVerify = true //nolint:gosec // the DSN's own setting
		}
		if d.SSLCA != "" {
			pem, err := os.ReadFile(d.SSLCA)
			if err != nil {
				return nil, fmt.Errorf("ssl-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ssl-ca: %s holds no PEM certificate", d.SSLCA)
			}
		}
		if d.SSLCert != "" {
			cert, err := tls.LoadX509KeyPair(d.SSLCert, d.SSLKey)
			if err != nil {
				return nil, fmt.Errorf("ssl-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		c.TLS = tc
	}
	return c, nil
}

func newMySQL(d config.DBCheck, o Options) (func(context.Context) outcome, error) {
	dsn, err := d.DSN.Resolve(o.Getenv, o.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("mysql.dsn: %w", err)
	}
	mc, err := mysqlConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql.dsn: %s", redactErr(err, dsn))
	}
	query := d.Query
	if query == "" {
		query = "SELECT 1"
	}
	where := mc.Addr + "/" + mc.DBName
	return func(ctx context.Context) outcome {
		start := time.Now()
		conn, err := mysql.NewConnector(mc.Clone())
		if err != nil {
			return unknown("MySQL %s: %v", where, err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		db.SetMaxOpenConns(1)
		c, err := db.Conn(ctx)
		if err != nil {
			return fail("connect to MySQL %s: %s", where, redactErr(err, dsn))
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, query); err != nil {
			return fail("MySQL %s: query %q: %v", where, query, err)
		}
		took := time.Since(start)
		st, err := replicaStatus(ctx, c)
		var me *mysql.MySQLError
		switch {
		case errors.As(err, &me) && me.Number == 1227:
			// Access denied: SHOW REPLICA STATUS needs SLAVE MONITOR
			// (MariaDB 10.5+), REPLICATION CLIENT (MySQL) or SUPER.
			if d.MaxLag == 0 && d.MinReplicas == 0 {
				return pass("MySQL %s answers (%s); replication not read: the user lacks REPLICA MONITOR (MariaDB) or REPLICATION CLIENT (MySQL)", where, ms(took)).with("latency_seconds", took.Seconds())
			}
			return unknown("MySQL %s: replication status cannot be read: GRANT REPLICA MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) ON *.* to the check's user", where).with("latency_seconds", took.Seconds())
		case err != nil:
			return fail("MySQL %s: replication status: %v", where, err)
		}
		if st == nil {
			var replicas int
			if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").Scan(&replicas); err != nil {
				return fail("MySQL %s: %v", where, err)
			}
			oc := pass("MySQL %s is a primary with %d connected replicas (%s)", where, replicas, ms(took))
			if replicas < d.MinReplicas {
				// Without PROCESS the process list shows only the
				// user's own threads: 0 replicas would be a lie.
				if ok, err := canSeeProcesses(ctx, c); err == nil && !ok {
					return unknown("MySQL %s: connected replicas cannot be counted: GRANT PROCESS ON *.* to the check's user", where).with("latency_seconds", took.Seconds())
				}
				oc.status = StatusCritical
				oc.msg = fmt.Sprintf("MySQL %s has %d connected replicas, fewer than %d", where, replicas, d.MinReplicas)
			}
			return oc.with("replicas", float64(replicas)).with("standby", 0).with("latency_seconds", took.Seconds())
		}
		io, sqlT := st.get("Slave_IO_Running", "Replica_IO_Running"), st.get("Slave_SQL_Running", "Replica_SQL_Running")
		lagText := st.get("Seconds_Behind_Master", "Seconds_Behind_Source")
		var lag float64
		_, lagErr := fmt.Sscan(lagText, &lag)
		oc := pass("MySQL %s is a replica: IO thread %s, SQL thread %s, %s s behind (%s)", where, io, sqlT, lagText, ms(took))
		switch {
		case io != "Yes" || sqlT != "Yes":
			oc.status = StatusCritical
			msg := fmt.Sprintf("MySQL %s is a replica whose IO thread is %q and SQL thread %q", where, io, sqlT)
			if e := st.get("Last_IO_Error"); e != "" {
				msg += ": " + e
			} else if e := st.get("Last_SQL_Error"); e != "" {
				msg += ": " + e
			}
			oc.msg = msg
		case lagErr != nil:
			oc.status = StatusCritical
			oc.msg = fmt.Sprintf("MySQL %s is a replica whose lag is unknown (%q)", where, lagText)
		case d.MaxLag != 0 && lag > d.MaxLag.D().Seconds():
			oc.status = StatusCritical
			oc.msg = fmt.Sprintf("MySQL %s is a replica %.0f s behind, more than %s", where, lag, d.MaxLag)
		}
		if lagErr == nil {
			oc = oc.with("lag_seconds", lag)
		}
		return oc.with("standby", 1).with("latency_seconds", took.Seconds())
	}, nil
}

// canSeeProcesses reports whether the connection's user holds PROCESS
// (or SUPER, or ALL PRIVILEGES) on *.*, from SHOW GRANTS.
func canSeeProcesses(ctx context.Context, c *sql.Conn) (bool, error) {
	rows, err := c.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return false, err
		}
		g = strings.ToUpper(g)
		if strings.Contains(g, " ON *.* ") && (strings.Contains(g, "ALL PRIVILEGES") || strings.Contains(g, "PROCESS") || strings.Contains(g, "SUPER")) {
			return true, nil
		}
	}
	return false, rows.Err()
}

// row is one row of SHOW REPLICA STATUS by column name.
type row map[string]string

// get returns the first of the names present (the old and new spellings).
func (r row) get(names ...string) string {
	for _, n := range names {
		if v, ok := r[n]; ok {
			return v
		}
	}
	return ""
}

// replicaStatus reads SHOW REPLICA STATUS (SHOW SLAVE STATUS on servers
// that predate it); nil when the server is not a replica.
func replicaStatus(ctx context.Context, c *sql.Conn) (row, error) {
	rows, err := c.QueryContext(ctx, "SHOW REPLICA STATUS")
	if err != nil {
		if rows, err = c.QueryContext(ctx, "SHOW SLAVE STATUS"); err != nil {
			return nil, err
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	r := row{}
	for i, c := range cols {
		if vals[i].Valid {
			r[c] = vals[i].String
		} else {
			r[c] = "NULL"
		}
	}
	return r, nil
}

// redactErr keeps a DSN's password out of an error's text.
func redactErr(err error, dsn string) string {
	s := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	if i := strings.Index(dsn, "password="); i >= 0 {
		p := dsn[i+len("password="):]
		if j := strings.IndexAny(p, " &"); j >= 0 {
			p = p[:j]
		}
		if p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}
