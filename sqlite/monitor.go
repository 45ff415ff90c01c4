package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
)

// MonitorStore keeps the monitoring history (tables monitor_series and
// monitor_points). It acts on behalf of the server's poller, not of a
// signed-in user.
type MonitorStore struct{ db *DB }

var _ monitor.Store = (*MonitorStore)(nil)

// NewMonitorStore returns the monitoring history of db.
func NewMonitorStore(db *DB) *MonitorStore { return &MonitorStore{db: db} }

// Append implements monitor.Store.
func (s *MonitorStore) Append(ctx context.Context, platformID int64, at time.Time, samples []monitor.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	t := at.UnixMilli()
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		series, err := tx.PrepareContext(ctx, `INSERT INTO monitor_series(platform_id, metric, kind) VALUES (?, ?, ?)
			ON CONFLICT(platform_id, metric) DO UPDATE SET metric = excluded.metric RETURNING id`)
		if err != nil {
			return err
		}
		defer series.Close()
		point, err := tx.PrepareContext(ctx, `INSERT INTO monitor_points(series_id, tier, t, value, min, max, n, inc) VALUES (?, 0, ?, ?, ?, ?, 1, 0)
			ON CONFLICT(series_id, tier, t) DO UPDATE SET value = excluded.value, min = excluded.min, max = excluded.max`)
		if err != nil {
			return err
		}
		defer point.Close()
		for _, smp := range samples {
			var id int64
			if err := series.QueryRowContext(ctx, platformID, smp.Metric, int(smp.Kind)).Scan(&id); err != nil {
				return err
			}
			if _, err := point.ExecContext(ctx, id, t, smp.Value, smp.Value, smp.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if isForeignKey(err) {
		return myt.Errorf(myt.ENOTFOUND, "Platform %d not found.", platformID)
	}
	if err != nil {
		return fmt.Errorf("append monitoring samples of platform %d: %w", platformID, err)
	}
	return nil
}

func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Series implements monitor.Store.
func (s *MonitorStore) Series(ctx context.Context, platformID int64) ([]monitor.SeriesInfo, error) {
	q, args := "SELECT id, platform_id, metric, kind FROM monitor_series ORDER BY platform_id, metric", []any{}
	if platformID != 0 {
		q, args = "SELECT id, platform_id, metric, kind FROM monitor_series WHERE platform_id = ? ORDER BY metric", []any{platformID}
	}
	rows, err := s.db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []monitor.SeriesInfo
	for rows.Next() {
		var si monitor.SeriesInfo
		if err := rows.Scan(&si.ID, &si.PlatformID, &si.Metric, &si.Kind); err != nil {
			return nil, err
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

// Lookup implements monitor.Store.
func (s *MonitorStore) Lookup(ctx context.Context, platformID int64, metric string) (monitor.SeriesInfo, bool, error) {
	si := monitor.SeriesInfo{PlatformID: platformID, Metric: metric}
	err := s.db.db.QueryRowContext(ctx, "SELECT id, kind FROM monitor_series WHERE platform_id = ? AND metric = ?", platformID, metric).Scan(&si.ID, &si.Kind)
	if errors.Is(err, sql.ErrNoRows) {
		return si, false, nil
	}
	return si, err == nil, err
}

// Rows implements monitor.Store.
func (s *MonitorStore) Rows(ctx context.Context, seriesID int64, tier monitor.Tier, from, to time.Time) ([]monitor.Row, error) {
	rows, err := s.db.db.QueryContext(ctx, `SELECT t, value, min, max, n, inc FROM monitor_points
		WHERE series_id = ? AND tier = ? AND t >= ? AND t < ? ORDER BY t`, seriesID, int(tier), from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []monitor.Row
	for rows.Next() {
		r, err := scanMonitorRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanMonitorRow(row interface{ Scan(...any) error }) (monitor.Row, error) {
	var r monitor.Row
	var t int64
	err := row.Scan(&t, &r.Value, &r.Min, &r.Max, &r.N, &r.Inc)
	r.Time = fromMS(t)
	return r, err
}

// Last implements monitor.Store.
func (s *MonitorStore) Last(ctx context.Context, seriesID int64, tier monitor.Tier, before time.Time) (monitor.Row, bool, error) {
	r, err := scanMonitorRow(s.db.db.QueryRowContext(ctx, `SELECT t, value, min, max, n, inc FROM monitor_points
		WHERE series_id = ? AND tier = ? AND t < ? ORDER BY t DESC LIMIT 1`, seriesID, int(tier), before.UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return monitor.Row{}, false, nil
	}
	return r, err == nil, err
}

// Put implements monitor.Store.
func (s *MonitorStore) Put(ctx context.Context, seriesID int64, tier monitor.Tier, rows []monitor.Row) error {
	if len(rows) == 0 {
		return nil
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO monitor_points(series_id, tier, t, value, min, max, n, inc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(series_id, tier, t) DO UPDATE SET value = excluded.value, min = excluded.min, max = excluded.max, n = excluded.n, inc = excluded.inc`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, seriesID, int(tier), r.Time.UnixMilli(), r.Value, r.Min, r.Max, r.N, r.Inc); err != nil {
				return fmt.Errorf("put %s point of series %d: %w", tier, seriesID, err)
			}
		}
		return nil
	})
}

// DeleteBefore implements monitor.Store. The batch is one short
// transaction, so the poller's writes wait for at most one batch.
func (s *MonitorStore) DeleteBefore(ctx context.Context, tier monitor.Tier, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errors.New("delete monitoring points: limit must be positive")
	}
	res, err := s.db.db.ExecContext(ctx, `DELETE FROM monitor_points WHERE (series_id, tier, t) IN
		(SELECT series_id, tier, t FROM monitor_points WHERE tier = ? AND t < ? ORDER BY t LIMIT ?)`, int(tier), before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("delete %s monitoring points: %w", tier, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// RunningPlatforms returns every user's running platforms with their
// deployed revisions: what the poller watches (it acts for the server,
// not for a user). Design is the design that is deployed (the last
// succeeded deploy or update job's at the deployed revision), not an
// edit saved since; the platform's own design when no such job is kept.
func (s *MonitorStore) RunningPlatforms(ctx context.Context) ([]*myt.Platform, error) {
	rows, err := s.db.db.QueryContext(ctx, `SELECT p.id, p.user_id, p.name, p.status,
		COALESCE((SELECT j.design FROM jobs j WHERE j.platform_id = p.id AND j.revision = p.deployed_revision
			AND j.kind IN ('deploy', 'update') AND j.state = 'succeeded' ORDER BY j.id DESC LIMIT 1), p.design),
		p.revision, p.deployed_revision FROM platforms p WHERE p.status = ? ORDER BY p.id`, myt.StatusRunning)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Platform
	for rows.Next() {
		p := &myt.Platform{}
		var doc string
		if err := rows.Scan(&p.ID, &p.UserID, &p.Name, &p.Status, &doc, &p.Revision, &p.DeployedRevision); err != nil {
			return nil, err
		}
		p.Design = myt.NewDesign()
		if err := json.Unmarshal([]byte(doc), p.Design); err != nil {
			return nil, fmt.Errorf("platform %d design: %w", p.ID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
