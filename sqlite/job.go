package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/myt-iot/myt"
)

// JobStore keeps deploy jobs, their logs and platforms' deployment status.
// It acts on behalf of the server (the deploy runner), not of a signed-in
// user: callers check ownership first (the runner does, through
// PlatformService).
type JobStore struct{ db *DB }

// NewJobStore returns the job store of db.
func NewJobStore(db *DB) *JobStore { return &JobStore{db: db} }

const jobColumns = `j.id, j.platform_id, p.name, j.user_id, j.kind, j.state, j.revision, j.design, j.started_by, j.delete_data,
	j.created, j.started, j.finished, j.error, j.summary, j.steps, j.plan`

func scanJob(row interface{ Scan(...any) error }) (*myt.Job, error) {
	j := &myt.Job{}
	r := j
	var design, steps string
	var plan sql.NullString
	var created int64
	var started, finished sql.NullInt64
	err := row.Scan(&j.ID, &j.PlatformID, &j.Platform, &r.UserID, &j.Kind, &j.State, &j.Revision, &design, &j.StartedBy, &j.DeleteData,
		&created, &started, &finished, &j.Error, &j.Summary, &steps, &plan)
	if err != nil {
		return nil, err
	}
	j.Created, j.Started, j.Finished = fromMS(created), fromNullMS(started), fromNullMS(finished)
	r.Design = myt.NewDesign()
	if err := json.Unmarshal([]byte(design), r.Design); err != nil {
		return nil, fmt.Errorf("job %d design: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(steps), &j.Steps); err != nil {
		return nil, fmt.Errorf("job %d steps: %w", j.ID, err)
	}
	if plan.Valid {
		j.Plan = new(myt.Plan)
		if err := json.Unmarshal([]byte(plan.String), j.Plan); err != nil {
			return nil, fmt.Errorf("job %d plan: %w", j.ID, err)
		}
	}
	return r, nil
}

// CreateJob stores a new job (ID and Created are set) and moves the
// platform to status. The job applies j.Design at revision j.Revision, on
// behalf of j.UserID. ECONFLICT, naming the active job, when the platform
// has one.
func (s *JobStore) CreateJob(ctx context.Context, j *myt.Job, status string) error {
	doc, err := json.Marshal(j.Design)
	if err != nil {
		return err
	}
	steps, err := json.Marshal(j.Steps)
	if err != nil {
		return err
	}
	now := s.db.nowMS()
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO jobs(platform_id, user_id, kind, state, revision, design, started_by, delete_data, created, steps)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.PlatformID, j.UserID, j.Kind, j.State, j.Revision, string(doc), j.StartedBy, j.DeleteData, now, string(steps))
		if isUnique(err) {
			var id int64
			var kind, state string
			if qerr := tx.QueryRowContext(ctx, "SELECT id, kind, state FROM jobs WHERE platform_id = ? AND state IN ("+activeStates+")", j.PlatformID).Scan(&id, &kind, &state); qerr != nil {
				return qerr
			}
			return myt.Errorf(myt.ECONFLICT, "Platform %s already has an active job: %s job %d is %s. Wait for it, or cancel it.", j.Platform, kind, id, state)
		} else if err != nil {
			return err
		}
		if j.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		j.Created = fromMS(now)
		_, err = tx.ExecContext(ctx, "UPDATE platforms SET status = ?, updated = ? WHERE id = ?", status, now, j.PlatformID)
		return err
	})
}

var activeStates = "'" + strings.Join(myt.ActiveJobStates, "', '") + "'"

// Job returns the job with id. ENOTFOUND when there is none.
func (s *JobStore) Job(ctx context.Context, id int64) (*myt.Job, error) {
	r, err := scanJob(s.db.db.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM jobs j JOIN platforms p ON p.id = j.platform_id WHERE j.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, myt.Errorf(myt.ENOTFOUND, "Job not found.")
	}
	return r, err
}

// Jobs returns the user's jobs, newest first, selected by f.
func (s *JobStore) Jobs(ctx context.Context, userID int64, f myt.JobFilter) ([]*myt.Job, error) {
	q := "SELECT " + jobColumns + " FROM jobs j JOIN platforms p ON p.id = j.platform_id WHERE j.user_id = ?"
	args := []any{userID}
	if f.PlatformID != nil {
		q += " AND j.platform_id = ?"
		args = append(args, *f.PlatformID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q += " ORDER BY j.id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Job
	for rows.Next() {
		r, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveJob writes the job's state, steps, plan, error, summary and times.
func (s *JobStore) SaveJob(ctx context.Context, j *myt.Job) error {
	steps, err := json.Marshal(j.Steps)
	if err != nil {
		return err
	}
	var plan sql.NullString
	if j.Plan != nil {
		b, err := json.Marshal(j.Plan)
		if err != nil {
			return err
		}
		plan = sql.NullString{String: string(b), Valid: true}
	}
	_, err = s.db.db.ExecContext(ctx, `UPDATE jobs SET state = ?, started = ?, finished = ?, error = ?, summary = ?, steps = ?, plan = ? WHERE id = ?`,
		j.State, toNullMS(j.Started), toNullMS(j.Finished), j.Error, j.Summary, string(steps), plan, j.ID)
	return err
}

// SetPlatformDeployment records a job's outcome on its platform.
func (s *JobStore) SetPlatformDeployment(ctx context.Context, platformID int64, d myt.PlatformDeployment) error {
	q := "UPDATE platforms SET status = ?, updated = ?"
	args := []any{d.Status, s.db.nowMS()}
	if d.DeployedRevision != nil {
		q += ", deployed_revision = ?"
		args = append(args, *d.DeployedRevision)
	}
	if d.SetEndpoints {
		var ep sql.NullString
		if d.Endpoints != nil {
			b, err := json.Marshal(d.Endpoints)
			if err != nil {
				return err
			}
			ep = sql.NullString{String: string(b), Valid: true}
		}
		q += ", endpoints = ?"
		args = append(args, ep)
	}
	_, err := s.db.db.ExecContext(ctx, q+" WHERE id = ?", append(args, platformID)...)
	return err
}

// InterruptActive marks every active job interrupted (the server stopped
// while they ran) and the platforms they owned failed, so that the user can
// run them again. It returns the jobs it changed, as they were.
func (s *JobStore) InterruptActive(ctx context.Context) ([]*myt.Job, error) {
	var jobs []*myt.Job
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs j JOIN platforms p ON p.id = j.platform_id WHERE j.state IN ("+activeStates+")")
		if err != nil {
			return err
		}
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				rows.Close()
				return err
			}
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := s.db.nowMS()
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, "UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ?",
				myt.JobInterrupted, now, "MyT stopped while this job ran. Run it again: every step converges.", j.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE platforms SET status = ?, updated = ? WHERE id = ?", myt.StatusFailed, now, j.PlatformID); err != nil {
				return err
			}
		}
		return nil
	})
	return jobs, err
}

// AppendLog stores text as the job's next log chunk and returns its seq.
func (s *JobStore) AppendLog(ctx context.Context, jobID int64, text string) (int64, error) {
	var seq int64
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = ?", jobID).Scan(&seq); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO job_logs(job_id, seq, text) VALUES (?, ?, ?)", jobID, seq, text)
		return err
	})
	return seq, err
}

// ReplaceLog replaces the text of chunk seq (the marker of a cut) and
// deletes the chunks between from and to (inclusive): the dropped middle
// of a long log.
func (s *JobStore) ReplaceLog(ctx context.Context, jobID, seq int64, text string, from, to int64) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM job_logs WHERE job_id = ? AND seq BETWEEN ? AND ?", jobID, from, to); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE job_logs SET text = ? WHERE job_id = ? AND seq = ?", text, jobID, seq)
		return err
	})
}

// Log returns the job's chunks after seq after, in order, at most limit
// of them (0: 1000).
func (s *JobStore) Log(ctx context.Context, jobID, after int64, limit int) ([]myt.LogChunk, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.db.QueryContext(ctx, "SELECT seq, text FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?", jobID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []myt.LogChunk
	for rows.Next() {
		var c myt.LogChunk
		if err := rows.Scan(&c.Seq, &c.Text); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
