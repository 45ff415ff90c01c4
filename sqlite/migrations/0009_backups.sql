-- myt:foreign-keys-off
-- Backups and restores. Job kinds 'backup' and 'restore' join the CHECK
-- of jobs (a rebuild, as 0006_code.sql did, foreign keys off), and each
-- backup MyT keeps is recorded: a row is 'running' while its file is
-- written under a temporary name and becomes 'ok' only once the file is
-- synced, renamed and its checksum read back; a server that stops mid-
-- backup marks it 'failed' at the next start.
CREATE TABLE jobs_new (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL CHECK (kind IN ('deploy', 'update', 'destroy', 'publish', 'backup', 'restore')),
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

CREATE TABLE backups (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	job_id      INTEGER NOT NULL,                  -- jobs are kept as long as their platform
	kind        TEXT    NOT NULL,                  -- database kind
	state       TEXT    NOT NULL CHECK (state IN ('running', 'ok', 'failed')),
	size        INTEGER NOT NULL DEFAULT 0,
	sha256      TEXT    NOT NULL DEFAULT '',
	encrypted   INTEGER NOT NULL DEFAULT 0,
	format      TEXT    NOT NULL DEFAULT '',
	file        TEXT    NOT NULL,                  -- relative to the data dir
	reason      TEXT    NOT NULL DEFAULT 'manual',
	started     INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX backups_platform ON backups(platform_id, id);

-- A platform's backup schedule: daily at hour:minute UTC, or hourly at
-- minute; keep is the retention count of good backups (0: all).
CREATE TABLE backup_schedules (
	platform_id INTEGER PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE,
	enabled     INTEGER NOT NULL DEFAULT 0,
	hourly      INTEGER NOT NULL DEFAULT 0,
	hour        INTEGER NOT NULL DEFAULT 3 CHECK (hour BETWEEN 0 AND 23),
	minute      INTEGER NOT NULL DEFAULT 0 CHECK (minute BETWEEN 0 AND 59),
	keep        INTEGER NOT NULL DEFAULT 7 CHECK (keep >= 0),
	last_run    INTEGER                            -- unix ms of the last scheduled start
) STRICT;
