-- myt:foreign-keys-off
-- Handler publish. A job kind 'publish' joins the CHECK of jobs, which
-- SQLite changes only by rebuilding the table (the documented 12 steps:
-- foreign keys off around this migration, checked before it commits),
-- and every version of a platform's handler that ran on it is kept.
CREATE TABLE jobs_new (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL CHECK (kind IN ('deploy', 'update', 'destroy', 'publish')),
	state       TEXT    NOT NULL CHECK (state IN ('queued', 'planning', 'awaiting-approval', 'running',
	                                              'succeeded', 'failed', 'cancelled', 'interrupted')),
	revision    INTEGER NOT NULL,
	design      TEXT    NOT NULL,                  -- JSON design document the job applies
	started_by  TEXT    NOT NULL,
	delete_data INTEGER NOT NULL DEFAULT 0,
	created     INTEGER NOT NULL,
	started     INTEGER,
	finished    INTEGER,
	error       TEXT    NOT NULL DEFAULT '',
	summary     TEXT    NOT NULL DEFAULT '',
	steps       TEXT    NOT NULL DEFAULT '[]',     -- JSON []myt.JobStep
	plan        TEXT                               -- JSON myt.Plan
) STRICT;
INSERT INTO jobs_new (id, platform_id, user_id, kind, state, revision, design, started_by, delete_data,
                      created, started, finished, error, summary, steps, plan)
	SELECT id, platform_id, user_id, kind, state, revision, design, started_by, delete_data,
	       created, started, finished, error, summary, steps, plan FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_platform ON jobs(platform_id, id);
CREATE INDEX jobs_user ON jobs(user_id, id);
-- One active job per platform, enforced by the database.
CREATE UNIQUE INDEX jobs_one_active ON jobs(platform_id)
	WHERE state IN ('queued', 'planning', 'awaiting-approval', 'running');

-- Each handler a platform ran, recorded when the job that put it there
-- succeeded. The code is the design's, so it is stored as designs are.
CREATE TABLE code_versions (
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	code        TEXT    NOT NULL,                  -- empty: passthrough
	author      TEXT    NOT NULL,
	created     INTEGER NOT NULL,
	job_id      INTEGER NOT NULL,                  -- jobs are kept as long as their platform
	job_kind    TEXT    NOT NULL,
	PRIMARY KEY (platform_id, version)
) STRICT, WITHOUT ROWID;
