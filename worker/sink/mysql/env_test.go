package mysql_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

func mysqlDSN(t *testing.T) (string, string) {
	return testenv.Require(t).MariaDB(t).DSN, "measurements"
}
