package mysql_test

import (
	"testing"

	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/mysql"
	"github.com/myt-iot/myt/worker/sink/sinktest"
)

func TestConformance(t *testing.T) {
	dsn, table := mysqlDSN(t)
	sinktest.Run(t, func(o sink.Options) sink.Sink {
		o.DSN = dsn
		o.Log = sinktest.Logger(t)
		return mysql.New(o)
	}, table, sinktest.Caps{})
}
