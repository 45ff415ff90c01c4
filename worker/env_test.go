package worker_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

// rabbitFor starts a fresh RabbitMQ (MQTT enabled) for the test.
func rabbitFor(t *testing.T) broker {
	t.Helper()
	r := testenv.Require(t).RabbitMQ(t)
	return broker{AMQPURL: r.AMQPURL, MQTTAddr: r.MQTTAddr, User: r.User, Password: r.Password,
		Stop: func(t *testing.T) { r.Stop(t) }, Kill: func(t *testing.T) { r.Kill(t) }, Start: func(t *testing.T) { r.Start(t) }}
}

// databaseFor starts a fresh database server of the kind for the test.
func databaseFor(t *testing.T, kind string) database {
	t.Helper()
	env := testenv.Require(t)
	switch kind {
	case "postgres":
		db := env.Postgres(t)
		return database{Kind: kind, DSN: db.DSN, Stop: func(t *testing.T) { db.Stop(t) }, Start: func(t *testing.T) { db.Start(t) }}
	case "mysql":
		db := env.MariaDB(t)
		return database{Kind: kind, DSN: db.DSN, Stop: func(t *testing.T) { db.Stop(t) }, Start: func(t *testing.T) { db.Start(t) }}
	case "mongodb":
		m := env.MongoDB(t)
		return database{Kind: kind, DSN: m.URI + "myt", Stop: func(t *testing.T) { m.Stop(t) }, Start: func(t *testing.T) { m.Start(t) }}
	case "influxdb":
		i := env.InfluxDB(t)
		return database{Kind: kind, DSN: i.URL + "/?db=" + i.Database, Stop: func(t *testing.T) { i.Stop(t) }, Start: func(t *testing.T) { i.Start(t) }}
	}
	t.Fatalf("unknown database kind %q", kind)
	return database{}
}
