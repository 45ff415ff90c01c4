// Package mongodb is the MongoDB sink (official Go driver v2). A record
// becomes the document {_id: id, device, topic, ts, ts_ns, fields: {...}}
// where ts is a BSON date (milliseconds) and ts_ns the sub-millisecond
// remainder in nanoseconds. On start it creates a time-series collection
// (timeField ts, metaField device) when the server supports one, a plain
// collection otherwise, and logs which. Writes are idempotent on _id; in a
// time-series collection (which cannot enforce a unique _id) redelivered
// records whose _id is present already are skipped.
package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// DefaultDatabase is used when the URI names no database.
const DefaultDatabase = "myt"

// Sink writes to one collection.
type Sink struct {
	opts       sink.Options
	log        *slog.Logger
	client     *mongo.Client
	coll       *mongo.Collection
	timeSeries bool
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Pinger   = (*Sink)(nil)
	_ sink.Exporter = (*Sink)(nil)
	_ sink.Expirer  = (*Sink)(nil)
)

// New returns an unconnected sink. The DSN is a mongodb:// URI; its path
// names the database (default myt).
func New(o sink.Options) *Sink {
	return &Sink{opts: o, log: o.Logger().With("sink", "mongodb")}
}

// TimeSeries reports whether the collection is a time-series collection.
func (s *Sink) TimeSeries() bool { return s.timeSeries }

// Connect connects and creates the collection and its index.
func (s *Sink) Connect(ctx context.Context) error {
	cs, err := connstring.ParseAndValidate(s.opts.DSN)
	if err != nil {
		return errors.New("mongodb dsn: cannot parse (value not shown)")
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(s.opts.DSN).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return fmt.Errorf("mongodb connect: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		client.Disconnect(context.Background())
		return fmt.Errorf("mongodb connect: %w", err)
	}
	if err := s.setup(ctx, client, dbName); err != nil {
		client.Disconnect(context.Background())
		return err
	}
	s.client = client
	return nil
}

// setup creates the collection and index.
func (s *Sink) setup(ctx context.Context, client *mongo.Client, dbName string) error {
	db := client.Database(dbName)
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: s.opts.Table}})
	if err != nil {
		return fmt.Errorf("mongodb: list collections: %w", err)
	}
	if len(specs) == 0 {
		tsOpts := options.TimeSeries().SetTimeField("ts").SetMetaField("device").SetGranularity("seconds")
		err := db.CreateCollection(ctx, s.opts.Table, options.CreateCollection().SetTimeSeriesOptions(tsOpts))
		if err != nil {
			s.log.Info("mongodb: time-series collections not supported here; creating a plain collection", "err", err)
			if err := db.CreateCollection(ctx, s.opts.Table); err != nil {
				var ce mongo.CommandError
				if !errors.As(err, &ce) || ce.Code != 48 { // 48: NamespaceExists (a racing worker)
					return fmt.Errorf("mongodb: create collection: %w", err)
				}
			}
		}
		specs, err = db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: s.opts.Table}})
		if err != nil {
			return fmt.Errorf("mongodb: list collections: %w", err)
		}
	}
	s.timeSeries = len(specs) > 0 && specs[0].Type == "timeseries"
	s.coll = db.Collection(s.opts.Table)
	_, err = s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "device", Value: 1}, {Key: "ts", Value: 1}}})
	if err != nil {
		s.log.Warn("mongodb: cannot create the (device, ts) index", "err", err)
	}
	if s.timeSeries {
		s.log.Info("mongodb sink ready: time-series collection", "collection", s.opts.Table)
	} else {
		s.log.Info("mongodb sink ready: plain collection", "collection", s.opts.Table)
	}
	return nil
}

// toBSON converts JSON values: json.Number becomes int64 when integral,
// else float64; objects and arrays recursively.
func toBSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case map[string]any:
		m := make(bson.M, len(x))
		for k, e := range x {
			m[k] = toBSON(e)
		}
		return m
	case []any:
		a := make(bson.A, len(x))
		for i, e := range x {
			a[i] = toBSON(e)
		}
		return a
	}
	return v
}

func (s *Sink) document(r record.Record) (bson.D, error) {
	fields := make(bson.M, len(r.Fields))
	for k, v := range r.Fields {
		if typ, ok := s.opts.Fields[k]; ok {
			c, err := record.Coerce(v, typ)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", k, err)
			}
			fields[k] = c
			continue
		}
		fields[k] = toBSON(v)
	}
	ts := r.TS.UTC()
	d := bson.D{
		{Key: "_id", Value: r.ID}, {Key: "device", Value: r.Device}, {Key: "topic", Value: r.Topic},
		{Key: "ts", Value: ts.Truncate(time.Millisecond)},
	}
	if ns := ts.Nanosecond() % 1e6; ns != 0 {
		d = append(d, bson.E{Key: "ts_ns", Value: int32(ns)})
	}
	return append(d, bson.E{Key: "fields", Value: fields}), nil
}

// Write inserts the batch (unordered); duplicates of present ids are
// ignored.
func (s *Sink) Write(ctx context.Context, batch []record.Record) error {
	if len(batch) == 0 {
		return nil
	}
	skip := map[string]bool{}
	if s.timeSeries {
		var ids []string
		for _, r := range batch {
			if r.Redelivered {
				ids = append(ids, r.ID)
			}
		}
		if len(ids) > 0 {
			cur, err := s.coll.Find(ctx, bson.M{"_id": bson.M{"$in": ids}}, options.Find().SetProjection(bson.M{"_id": 1}))
			if err != nil {
				return fmt.Errorf("mongodb: find redelivered: %w", err)
			}
			var found []struct {
				ID string `bson:"_id"`
			}
			if err := cur.All(ctx, &found); err != nil {
				return fmt.Errorf("mongodb: find redelivered: %w", err)
			}
			for _, f := range found {
				skip[f.ID] = true
			}
		}
	}
	docs := make([]any, 0, len(batch))
	for _, r := range batch {
		if skip[r.ID] {
			continue
		}
		d, err := s.document(r)
		if err != nil {
			return &record.InvalidError{ID: r.ID, Err: err}
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	return classify(err)
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	var codes []int
	var bwe mongo.BulkWriteException
	var we mongo.WriteException
	switch {
	case errors.As(err, &bwe):
		if bwe.WriteConcernError != nil {
			return fmt.Errorf("mongodb write: %w", err)
		}
		for _, e := range bwe.WriteErrors {
			codes = append(codes, e.Code)
		}
	case errors.As(err, &we):
		if we.WriteConcernError != nil {
			return fmt.Errorf("mongodb write: %w", err)
		}
		for _, e := range we.WriteErrors {
			codes = append(codes, e.Code)
		}
	default:
		return fmt.Errorf("mongodb write: %w", err)
	}
	for _, c := range codes {
		if c != 11000 && c != 11001 { // duplicate key: already stored
			return sink.Reject(fmt.Errorf("mongodb: %w", err))
		}
	}
	return nil
}

// Ping checks the server answers.
func (s *Sink) Ping(ctx context.Context) error {
	if s.client == nil {
		return errors.New("mongodb: not connected")
	}
	return s.client.Ping(ctx, nil)
}

// fromBSON converts decoded BSON to JSON-like values.
func fromBSON(v any) any {
	switch x := v.(type) {
	case int32:
		return int64(x)
	case bson.D:
		m := make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = fromBSON(e.Value)
		}
		return m
	case bson.M:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = fromBSON(e)
		}
		return m
	case bson.A:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = fromBSON(e)
		}
		return a
	case bson.DateTime:
		return x.Time().UTC().Format(time.RFC3339Nano)
	}
	return v
}

// Export streams documents in time order.
func (s *Sink) Export(ctx context.Context, q sink.Query, fn func(record.Record) error) error {
	filter := bson.M{}
	tsf := bson.M{}
	if !q.From.IsZero() {
		tsf["$gte"] = q.From.UTC().Truncate(time.Millisecond)
	}
	if !q.To.IsZero() {
		// ts holds milliseconds (BSON dates): a document in To's own
		// millisecond may be before To, so the query goes to the end of
		// that millisecond and the precise bound is checked below.
		to := q.To.UTC().Truncate(time.Millisecond)
		if to.Before(q.To) {
			to = to.Add(time.Millisecond)
		}
		tsf["$lt"] = to
	}
	if len(tsf) > 0 {
		filter["ts"] = tsf
	}
	if q.Device != "" {
		filter["device"] = q.Device
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "ts", Value: 1}, {Key: "ts_ns", Value: 1}, {Key: "_id", Value: 1}}).SetBatchSize(1000))
	if err != nil {
		return fmt.Errorf("mongodb export: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d struct {
			ID     string    `bson:"_id"`
			Device string    `bson:"device"`
			Topic  string    `bson:"topic"`
			TS     time.Time `bson:"ts"`
			TSNS   int32     `bson:"ts_ns"`
			Fields bson.M    `bson:"fields"`
		}
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("mongodb export: %w", err)
		}
		ts := d.TS.UTC().Add(time.Duration(d.TSNS))
		if !q.From.IsZero() && ts.Before(q.From) || !q.To.IsZero() && !ts.Before(q.To) {
			continue
		}
		r := record.Record{ID: d.ID, Device: d.Device, Topic: d.Topic, TS: ts, Fields: map[string]any{}}
		for k, v := range d.Fields {
			r.Fields[k] = fromBSON(v)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return cur.Err()
}

// Expire deletes documents older than cutoff. ts is stored to the
// millisecond, so the cutoff is rounded down: a document is never deleted
// early, one in the last millisecond before cutoff goes on the next run.
// MongoDB 7.0 deletes from time-series collections with the same filter.
func (s *Sink) Expire(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.M{"ts": bson.M{"$lt": cutoff.UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return 0, fmt.Errorf("mongodb expire: %w", err)
	}
	return res.DeletedCount, nil
}

// Close disconnects.
func (s *Sink) Close() error {
	if s.client != nil {
		return s.client.Disconnect(context.Background())
	}
	return nil
}
