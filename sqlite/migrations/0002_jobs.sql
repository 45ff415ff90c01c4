-- Deploy, update and destroy jobs, their logs, and the OpenTofu state that
-- MyT keeps for each platform.
ALTER TABLE platforms ADD COLUMN deployed_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE platforms ADD COLUMN endpoints TEXT;           -- JSON myt.Endpoints, NULL until running

CREATE TABLE jobs (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL CHECK (kind IN ('deploy', 'update', 'destroy')),
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
CREATE INDEX jobs_platform ON jobs(platform_id, id);
CREATE INDEX jobs_user ON jobs(user_id, id);
-- One active job per platform, enforced by the database.
CREATE UNIQUE INDEX jobs_one_active ON jobs(platform_id)
	WHERE state IN ('queued', 'planning', 'awaiting-approval', 'running');

-- A job's log in chunks (not a row per line); the middle of a long log is
-- dropped, keeping its head and tail.
CREATE TABLE job_logs (
	job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	text   TEXT    NOT NULL,
	PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

-- OpenTofu/Terraform state, sealed with the server key and served to the
-- tool through the http backend with locking.
CREATE TABLE tf_states (
	platform_id INTEGER PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE,
	sealed      BLOB,                              -- NULL: no state yet
	lock_id     TEXT,                              -- NULL: unlocked
	lock_info   TEXT,                              -- the tool's lock info (JSON)
	updated     INTEGER NOT NULL
) STRICT;
