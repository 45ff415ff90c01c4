package postgres_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

func postgresDSN(t *testing.T) (string, string) {
	return testenv.Require(t).Postgres(t).DSN, "measurements"
}
