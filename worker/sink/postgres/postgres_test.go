package postgres_test

import (
	"testing"

	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/postgres"
	"github.com/myt-iot/myt/worker/sink/sinktest"
)

func TestConformance(t *testing.T) {
	dsn, table := postgresDSN(t)
	sinktest.Run(t, func(o sink.Options) sink.Sink {
		o.DSN = dsn
		o.Log = sinktest.Logger(t)
		return postgres.New(o)
	}, table, sinktest.Caps{})
}
