package influxdb_test

import (
	"testing"

	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/influxdb"
	"github.com/myt-iot/myt/worker/sink/sinktest"
)

func TestConformance(t *testing.T) {
	dsn, table := influxDSN(t)
	sinktest.Run(t, func(o sink.Options) sink.Sink {
		o.DSN = dsn
		o.Log = sinktest.Logger(t)
		return influxdb.New(o)
	}, table, sinktest.Caps{NoNested: true})
}
