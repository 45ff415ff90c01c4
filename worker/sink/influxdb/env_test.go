package influxdb_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

func influxDSN(t *testing.T) (string, string) {
	i := testenv.Require(t).InfluxDB(t)
	return i.URL + "/?db=" + i.Database, "measurements"
}
