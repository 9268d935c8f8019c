package check

// Replication checks against real replication: a throwaway PostgreSQL
// primary with a streaming standby, and a MariaDB primary with a replica,
// each built in the test's temporary directory on free ports. The
// machine's own servers (5432, 3306) are left alone.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := strings.Cut(closedAddr(t), ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls f until it reports done, failing the test with f's last
// word when the time is up.
func waitUntil(t *testing.T, limit time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		done, last := f()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last: %s", what, limit, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgBinDir is the newest /usr/lib/postgresql/N/bin holding the server tools.
func pgBinDir(t *testing.T) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	var dirs []string
	for _, f := range found {
		dir := filepath.Dir(f)
		ok := true
		for _, b := range []string{"initdb", "postgres", "pg_basebackup"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				ok = false
			}
		}
		if ok {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_basebackup) not found under /usr/lib/postgresql/*/bin: `make test` installs postgresql")
	}
	ver := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	sort.Slice(dirs, func(i, j int) bool { return ver(dirs[i]) < ver(dirs[j]) })
	return dirs[len(dirs)-1]
}

// pgCluster is a throwaway PostgreSQL server run by the postgres user.
type pgCluster struct {
	bin, base, data string
	port            int
}

// asPostgres runs one of PostgreSQL's programs as the postgres user, which
// the server insists on (it will not run as root).
func (c *pgCluster) asPostgres(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, prog)}, args...)...)
	cmd.Dir = c.base
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGCONNECT_TIMEOUT=5")
	return cmd.CombinedOutput()
}

func (c *pgCluster) must(t *testing.T, prog string, args ...string) {
	t.Helper()
	if out, err := c.asPostgres(prog, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

func (c *pgCluster) start(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { c.asPostgres("pg_ctl", "-D", c.data, "-m", "immediate", "stop") })
	logf := c.data + ".log"
	if out, err := c.asPostgres("pg_ctl", "-D", c.data, "-l", logf, "-w", "-t", "30", "start"); err != nil {
		log, _ := os.ReadFile(logf)
		t.Fatalf("pg_ctl start %s: %v\n%s\n%s", c.data, err, out, log)
	}
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", c.port)
}

// scalar runs one query that returns one row of one column, as text.
func (c *pgCluster) scalar(query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn())
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(ctx, query).Scan(&s)
	return s, err
}

func (c *pgCluster) exec(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresReplica(t *testing.T) {
	bin := pgBinDir(t)
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (`make test` installs postgresql): %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	base := t.TempDir()
	// t.TempDir's parent is root's and 0700: let postgres through to a
	// directory of its own.
	if err := os.Chmod(filepath.Dir(base), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(base, uid, gid); err != nil {
		t.Fatal(err)
	}
	primary := &pgCluster{bin: bin, base: base, data: filepath.Join(base, "primary"), port: freePort(t)}
	standby := &pgCluster{bin: bin, base: base, data: filepath.Join(base, "standby"), port: freePort(t)}
	if standby.port == primary.port {
		standby.port = freePort(t)
	}

	// initdb's default pg_hba.conf already lets replication connect from
	// 127.0.0.1 with the --auth method, trust here.
	primary.must(t, "initdb", "-D", primary.data, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	appendFile(t, filepath.Join(primary.data, "postgresql.conf"), fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = replica
max_wal_senders = 4
max_connections = 20
shared_buffers = 16MB
fsync = off
wal_retrieve_retry_interval = '200ms'
`, primary.port, base))
	primary.start(t)

	primary.must(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", standby.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	// The standby inherits the primary's settings: only its port differs.
	appendFile(t, filepath.Join(standby.data, "postgresql.conf"), fmt.Sprintf("port = %d\n", standby.port))
	standby.start(t)

	waitUntil(t, 20*time.Second, "the standby streams", func() (bool, string) {
		n, err := primary.scalar("SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming'")
		if err != nil || n != "1" {
			return false, fmt.Sprintf("primary: %q streaming, %v", n, err)
		}
		s, err := standby.scalar("SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'none')")
		return err == nil && s == "streaming", fmt.Sprintf("standby receiver %q, %v", s, err)
	})

	pcheck := func(c *pgCluster, minReplicas int, maxLag time.Duration) Result {
		t.Helper()
		return run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret(c.dsn()), MinReplicas: minReplicas, MaxLag: config.Duration(maxLag)}}, Options{})
	}

	r := pcheck(primary, 1, 0)
	want(t, r, true, StatusOK, "is a primary with 1 streaming standbys")
	if r.Values["replicas"] != 1 || r.Values["standby"] != 0 {
		t.Errorf("primary values %v", r.Values)
	}
	r = pcheck(primary, 2, 0)
	want(t, r, false, StatusCritical, "has 1 streaming standbys, fewer than 2")

	r = pcheck(standby, 0, time.Minute)
	want(t, r, true, StatusOK, "is a standby, WAL receiver streaming")
	if lag, ok := r.Values["lag_seconds"]; !ok || lag < 0 || lag > 60 || r.Values["standby"] != 1 {
		t.Errorf("standby values %v", r.Values)
	}
	// A write on the primary reaches the standby, which still passes.
	if err := primary.exec("CREATE TABLE marker AS SELECT 'replicated'::text AS v"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the write reaches the standby", func() (bool, string) {
		v, err := standby.scalar("SELECT v FROM marker")
		return v == "replicated", fmt.Sprint(v, err)
	})
	want(t, pcheck(standby, 0, time.Minute), true, StatusOK, "is a standby, WAL receiver streaming")

	// The primary goes away: the standby's WAL receiver stops streaming.
	primary.must(t, "pg_ctl", "-D", primary.data, "-m", "fast", "-w", "-t", "30", "stop")
	waitUntil(t, 20*time.Second, "the standby check fails once the primary is gone", func() (bool, string) {
		r = pcheck(standby, 0, 0)
		return !r.OK, r.Message
	})
	want(t, r, false, StatusCritical, "is a standby whose WAL receiver is")
	want(t, r, false, StatusCritical, "not streaming")
	if r.Values["standby"] != 1 {
		t.Errorf("standby values %v", r.Values)
	}
	t.Logf("primary down: %s", r.Message)
}

// myServer is a throwaway MariaDB server run as root.
type myServer struct {
	dir  string
	port int
	done chan struct{}
	db   *sql.DB // root over the unix socket, for setup
}

func mariadbBins(t *testing.T) (install, server string) {
	t.Helper()
	var err error
	if install, err = exec.LookPath("mariadb-install-db"); err == nil {
		server, err = exec.LookPath("mariadbd")
		if err != nil {
			server, err = exec.LookPath("/usr/sbin/mariadbd")
		}
	}
	if err != nil {
		t.Fatalf("MariaDB server binaries (mariadb-install-db, mariadbd) not found: `make test` installs mariadb-server: %v", err)
	}
	return install, server
}

func startMariaDB(t *testing.T, install, server, dir string, serverID int) *myServer {
	t.Helper()
	s := &myServer{dir: dir, port: freePort(t), done: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	small := []string{"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M"}
	cmd := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db"}, small...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "sock")
	errLog := filepath.Join(dir, "error.log")
	srv := exec.Command(server, append([]string{"--no-defaults", "--user=root", "--datadir=" + data,
		"--socket=" + sock, "--port=" + strconv.Itoa(s.port), "--bind-address=127.0.0.1",
		"--pid-file=" + filepath.Join(dir, "pid"), "--log-error=" + errLog,
		"--server-id=" + strconv.Itoa(serverID), "--log-bin=" + filepath.Join(dir, "binlog"),
		"--skip-name-resolve", "--skip-slave-start", "--innodb-flush-log-at-trx-commit=0"}, small...)...)
	if err := srv.Start(); err != nil {
		t.Fatalf("mariadbd: %v", err)
	}
	go func() { srv.Wait(); close(s.done) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
			<-s.done
		}
	})
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr = "root", "unix", sock
	mc.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	s.db = sql.OpenDB(conn)
	t.Cleanup(func() { s.db.Close() })
	waitUntil(t, 20*time.Second, "mariadbd in "+dir+" accepts connections", func() (bool, string) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(errLog)
			t.Fatalf("mariadbd in %s exited:\n%s", dir, log)
		default:
		}
		err := s.db.Ping()
		return err == nil, fmt.Sprint(err)
	})
	return s
}

func (s *myServer) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// slaveStatus is SHOW SLAVE STATUS's one row by column name (nil: none).
func (s *myServer) slaveStatus() (row, error) {
	c, err := s.db.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return replicaStatus(context.Background(), c)
}

func TestMySQLReplica(t *testing.T) {
	install, server := mariadbBins(t)
	base := t.TempDir()
	primary := startMariaDB(t, install, server, filepath.Join(base, "p"), 1)
	replica := startMariaDB(t, install, server, filepath.Join(base, "r"), 2)

	primary.exec(t,
		"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'",
		"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
		"INSERT INTO app.t VALUES (1)")
	// The replica starts from the primary's first binlog (empty
	// gtid_slave_pos) and so replays everything above.
	replica.exec(t, fmt.Sprintf(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d,
		MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`, primary.port),
		"START SLAVE")
	caughtUp := func() (bool, string) {
		st, err := replica.slaveStatus()
		if err != nil || st == nil {
			return false, fmt.Sprintf("status %v, %v", st, err)
		}
		var n int
		err = replica.db.QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n)
		last := fmt.Sprintf("IO %s, SQL %s, behind %s, rows %d (%v), errors %q %q",
			st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Seconds_Behind_Master"], n, err, st["Last_IO_Error"], st["Last_SQL_Error"])
		return st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" && st["Seconds_Behind_Master"] == "0" && n > 0, last
	}
	waitUntil(t, 20*time.Second, "the replica catches up", caughtUp)

	mcheck := func(s *myServer, minReplicas int, maxLag time.Duration) Result {
		t.Helper()
		dsn := fmt.Sprintf("mysql://root@127.0.0.1:%d/mysql", s.port)
		return run(t, config.Check{MySQL: config.DBCheck{DSN: config.LiteralSecret(dsn), MinReplicas: minReplicas, MaxLag: config.Duration(maxLag)}}, Options{})
	}

	r := mcheck(primary, 1, 0)
	want(t, r, true, StatusOK, "is a primary with 1 connected replicas")
	if r.Values["replicas"] != 1 || r.Values["standby"] != 0 {
		t.Errorf("primary values %v", r.Values)
	}
	r = mcheck(primary, 2, 0)
	want(t, r, false, StatusCritical, "has 1 connected replicas, fewer than 2")

	r = mcheck(replica, 0, time.Minute)
	want(t, r, true, StatusOK, "is a replica: IO thread Yes, SQL thread Yes, 0 s behind")
	if lag, ok := r.Values["lag_seconds"]; !ok || lag != 0 || r.Values["standby"] != 1 {
		t.Errorf("replica values %v", r.Values)
	}

	// The SQL thread stops: the replica fails.
	replica.exec(t, "STOP SLAVE SQL_THREAD")
	r = mcheck(replica, 0, 0)
	want(t, r, false, StatusCritical, `is a replica whose IO thread is "Yes" and SQL thread "No"`)
	if _, ok := r.Values["lag_seconds"]; ok || r.Values["standby"] != 1 {
		t.Errorf("stopped replica values %v (Seconds_Behind_Master is NULL: no lag)", r.Values)
	}
	replica.exec(t, "START SLAVE SQL_THREAD")
	waitUntil(t, 10*time.Second, "the replica runs again", caughtUp)
	want(t, mcheck(replica, 0, time.Minute), true, StatusOK, "IO thread Yes, SQL thread Yes")

	// A delayed replica: a write on the primary waits out MASTER_DELAY,
	// and Seconds_Behind_Master grows past max_lag meanwhile.
	// (START SLAVE passes through IO thread states Connecting and
	// Preparing, which the check rightly fails: wait them out first.)
	replica.exec(t, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=60", "START SLAVE")
	waitUntil(t, 10*time.Second, "the delayed replica runs", caughtUp)
	primary.exec(t, "INSERT INTO app.t VALUES (2)")
	waitUntil(t, 15*time.Second, "the delayed replica fails max_lag", func() (bool, string) {
		r = mcheck(replica, 0, time.Second)
		return strings.Contains(r.Message, "behind, more than"), r.Message
	})
	want(t, r, false, StatusCritical, "s behind, more than 1s")
	if lag := r.Values["lag_seconds"]; lag <= 1 {
		t.Errorf("delayed replica values %v", r.Values)
	}
	// Without max_lag the lag is reported, not judged.
	want(t, mcheck(replica, 0, 0), true, StatusOK, "IO thread Yes, SQL thread Yes")
	t.Logf("delayed: %s", r.Message)
}
