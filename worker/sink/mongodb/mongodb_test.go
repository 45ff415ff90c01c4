package mongodb_test

import (
	"testing"

	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/mongodb"
	"github.com/myt-iot/myt/worker/sink/sinktest"
)

func TestConformance(t *testing.T) {
	dsn, table := mongoDSN(t)
	sinktest.Run(t, func(o sink.Options) sink.Sink {
		o.DSN = dsn
		o.Log = sinktest.Logger(t)
		return mongodb.New(o)
	}, table, sinktest.Caps{})
}
