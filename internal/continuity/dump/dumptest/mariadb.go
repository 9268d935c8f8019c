// Package dumptest holds what the database tests of package dump and of
// package continuity share: the test machine's MariaDB server
// (scripts/test-deps.sh: root, no password, loopback TCP), databases that
// clean up after themselves, and one schema filled with every kind of
// object and value a dump must carry.
package dumptest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// MariaDBArgs are the mariadb client's options to reach the server as root.
var MariaDBArgs = []string{"--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root"}

// UniqueName is a fresh database (or user) name for this test run.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%x", prefix, os.Getpid(), rand.Uint32())
}

// MariaDB runs sql (in db unless empty) as root and returns the batch
// output without column names.
func MariaDB(t testing.TB, db, sql string) string {
	t.Helper()
	args := append(slices.Clone(MariaDBArgs), "--batch", "--skip-column-names", "--default-character-set=utf8mb4")
	if db != "" {
		args = append(args, "--database="+db)
	}
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb %s: %v\n%s\nSQL: %.300s", db, err, out, sql)
	}
	return strings.TrimSpace(string(out))
}

// MariaDBExec runs one statement as root at clean-up time, reporting
// (not stopping on) a failure.
func MariaDBExec(t testing.TB, sql string) {
	if out, err := exec.Command("mariadb", append(slices.Clone(MariaDBArgs), "-e", sql)...).CombinedOutput(); err != nil {
		t.Errorf("mariadb %s: %v %s", sql, err, out)
	}
}

// MariaDBDatabase creates an empty utf8mb4 database with a unique name,
// dropped when the test ends.
func MariaDBDatabase(t testing.TB, prefix string) string {
	t.Helper()
	db := UniqueName(prefix)
	MariaDB(t, "", "CREATE DATABASE `"+db+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	t.Cleanup(func() { MariaDBExec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	return db
}

// MariaDBFill is SQL that creates three InnoDB tables (a foreign key,
// BLOBs, unicode, NULLs), a trigger, a view, a function, a procedure and
// an event, and fills them: n customers, 4n orders and 4n audit rows.
func MariaDBFill(n int) string {
	return mariadbSchema + fmt.Sprintf("START TRANSACTION;\nCALL fill(%d);\nCOMMIT;\n", n)
}

const mariadbSchema = `
CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL, note TEXT NULL, avatar BLOB NULL,
  created DATETIME(6) NOT NULL) ENGINE=InnoDB;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2), payload MEDIUMBLOB,
  comment TEXT NULL, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id INT, what VARCHAR(20)) ENGINE=InnoDB;
CREATE TRIGGER orders_log AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit(order_id, what) VALUES (NEW.id, 'insert');
CREATE VIEW big_orders AS SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 500;
DELIMITER //
CREATE FUNCTION vat(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN x * 1.2 //
CREATE PROCEDURE fill(n INT)
BEGIN
  DECLARE i INT DEFAULT 1;
  WHILE i <= n DO
    INSERT INTO customers (name, note, avatar, created) VALUES (CONCAT('Zoë Ångström 日本語 🚀 ', i),
      IF(i % 7 = 0, NULL, CONCAT('note ''quoted'' \\ "dq" ', MD5(i))),
      IF(i % 5 = 0, NULL, CONCAT(UNHEX(MD5(i)), X'00FF0A0D5C27')),
      TIMESTAMP('2024-01-01') + INTERVAL i MINUTE);
    SET i = i + 1;
  END WHILE;
  SET i = 1;
  WHILE i <= n * 4 DO
    INSERT INTO orders (customer_id, amount, payload, comment) VALUES (1 + (i * 7919) % n, (i % 1000) + 0.25,
      UNHEX(REPEAT(MD5(i), 8)), IF(i % 3 = 0, NULL, CONCAT('line1\nline2\t€ ', i)));
    SET i = i + 1;
  END WHILE;
END //
DELIMITER ;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit WHERE id < 0;
`
