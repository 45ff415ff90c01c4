-- Monitoring history (package monitor). A series is one metric of one
-- platform; its points live in three tiers: 0 raw (one per poll), 1
-- five-minute and 2 hourly rollups. t is milliseconds since the epoch: the
-- sample time for raw points, the bucket's start for rollups.
CREATE TABLE monitor_series (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	metric      TEXT    NOT NULL,
	kind        INTEGER NOT NULL,          -- 0 gauge, 1 counter
	UNIQUE (platform_id, metric)
) STRICT;

-- value: the sample (raw), the mean (gauge rollup) or the counter's last
-- value in the bucket (counter rollup). min/max: a gauge's extremes.
-- n: raw samples behind the point. inc: a counter's increase within the
-- bucket, counter resets accounted for (0 for gauges and raw points).
CREATE TABLE monitor_points (
	series_id INTEGER NOT NULL REFERENCES monitor_series(id) ON DELETE CASCADE,
	tier      INTEGER NOT NULL,
	t         INTEGER NOT NULL,
	value     REAL    NOT NULL,
	min       REAL    NOT NULL,
	max       REAL    NOT NULL,
	n         INTEGER NOT NULL,
	inc       REAL    NOT NULL,
	PRIMARY KEY (series_id, tier, t)
) STRICT, WITHOUT ROWID;

-- Expiry deletes the oldest points of a tier in bounded batches.
CREATE INDEX monitor_points_expiry ON monitor_points (tier, t);
