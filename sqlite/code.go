package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/myt-iot/myt"
)

// CodeStore keeps the versions of each platform's handler
// (myt.CodeVersion). Like JobStore it acts for the server: callers check
// ownership first.
type CodeStore struct{ db *DB }

// NewCodeStore returns the code version store of db.
func NewCodeStore(db *DB) *CodeStore { return &CodeStore{db: db} }

// RecordCode adds v as the platform's newest version, unless the newest
// one has the same code; it sets v.Version and v.Created then and
// reports whether it added one. A platform's first version is recorded
// even when it is passthrough (empty code) only if some code ran before,
// so a platform that never had a handler has no versions.
func (s *CodeStore) RecordCode(ctx context.Context, v *myt.CodeVersion) (bool, error) {
	added := false
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		var last int
		var code string
		err := tx.QueryRowContext(ctx, "SELECT version, code FROM code_versions WHERE platform_id = ? ORDER BY version DESC LIMIT 1", v.PlatformID).Scan(&last, &code)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if v.Code == "" {
				return nil
			}
		case err != nil:
			return err
		case code == v.Code:
			return nil
		}
		now := s.db.nowMS()
		v.Version, v.Created = last+1, fromMS(now)
		_, err = tx.ExecContext(ctx, "INSERT INTO code_versions(platform_id, version, code, author, created, job_id, job_kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
			v.PlatformID, v.Version, v.Code, v.Author, now, v.JobID, v.JobKind)
		added = err == nil
		return err
	})
	return added, err
}

// CodeVersions lists the platform's versions, newest first, with Running
// and SameAs set.
func (s *CodeStore) CodeVersions(ctx context.Context, platformID int64) ([]*myt.CodeVersion, error) {
	rows, err := s.db.db.QueryContext(ctx, "SELECT version, code, author, created, job_id, job_kind FROM code_versions WHERE platform_id = ? ORDER BY version", platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var asc []*myt.CodeVersion
	first := map[string]int{}
	for rows.Next() {
		v := &myt.CodeVersion{PlatformID: platformID}
		var created int64
		if err := rows.Scan(&v.Version, &v.Code, &v.Author, &created, &v.JobID, &v.JobKind); err != nil {
			return nil, err
		}
		v.Created = fromMS(created)
		if n, ok := first[v.Code]; ok {
			v.SameAs = n
		} else {
			first[v.Code] = v.Version
		}
		asc = append(asc, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*myt.CodeVersion, len(asc))
	for i, v := range asc {
		out[len(asc)-1-i] = v
	}
	if len(out) > 0 {
		out[0].Running = true
	}
	return out, nil
}

// CodeVersion returns one version (Running and SameAs set). ENOTFOUND
// when the platform has no such version.
func (s *CodeStore) CodeVersion(ctx context.Context, platformID int64, version int) (*myt.CodeVersion, error) {
	all, err := s.CodeVersions(ctx, platformID)
	if err != nil {
		return nil, err
	}
	for _, v := range all {
		if v.Version == version {
			return v, nil
		}
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "The platform has no code version %d.", version)
}

// DeployedDesign returns the design the platform runs: that of the
// newest successful job at its deployed revision. ENOTFOUND when it is
// not deployed.
func (s *JobStore) DeployedDesign(ctx context.Context, platformID int64) (*myt.Design, error) {
	row := s.db.db.QueryRowContext(ctx, "SELECT "+jobColumns+` FROM jobs j JOIN platforms p ON p.id = j.platform_id
		WHERE j.platform_id = ? AND j.state = 'succeeded' AND j.kind <> 'destroy' AND j.revision = p.deployed_revision
		ORDER BY j.id DESC LIMIT 1`, platformID)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, myt.Errorf(myt.ENOTFOUND, "The platform is not deployed.")
	}
	if err != nil {
		return nil, err
	}
	return j.Design, nil
}
