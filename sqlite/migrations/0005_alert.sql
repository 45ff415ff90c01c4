-- Alerts (package alert). A rule's state (ok, pending, firing) is kept
-- here, so a restarted server neither fires again what already fired nor
-- forgets what is firing. Times are milliseconds since the epoch, 0 for
-- none.

-- alert_platforms marks the platforms whose default rules were created,
-- so that deleting every rule does not bring the defaults back.
CREATE TABLE alert_platforms (
	platform_id INTEGER PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE
) STRICT;

CREATE TABLE alert_rules (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	kind        TEXT    NOT NULL,          -- component-down, queue-depth, dead-letters, disk
	component   TEXT    NOT NULL DEFAULT '', -- component-down: one component, '' any
	threshold   REAL    NOT NULL,
	for_ms      INTEGER NOT NULL,          -- the condition holds this long to fire
	clear_ms    INTEGER NOT NULL,          -- and is clear this long to resolve
	enabled     INTEGER NOT NULL DEFAULT 1,
	state       TEXT    NOT NULL DEFAULT 'ok',
	since       INTEGER NOT NULL DEFAULT 0, -- the condition began to hold (pending, firing)
	clear_since INTEGER NOT NULL DEFAULT 0, -- firing, and the condition stopped holding
	value       REAL    NOT NULL DEFAULT 0, -- the value at the last change of state
	UNIQUE (platform_id, name)
) STRICT;

-- A webhook channel; its URL and signing secret are sealed in
-- platform_secrets under alert/webhook/<id>.
CREATE TABLE alert_channels (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	signed      INTEGER NOT NULL,
	created     INTEGER NOT NULL
) STRICT;

-- Every change of state: fired or resolved.
CREATE TABLE alert_events (
	id          INTEGER PRIMARY KEY,
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	rule_id     INTEGER REFERENCES alert_rules(id) ON DELETE SET NULL,
	rule        TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL,          -- firing, resolved
	value       REAL    NOT NULL,
	threshold   REAL    NOT NULL,
	since       INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	detail      TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX alert_events_platform ON alert_events (platform_id, id);

-- The outcome of sending an event to a channel.
CREATE TABLE alert_deliveries (
	event_id   INTEGER NOT NULL REFERENCES alert_events(id) ON DELETE CASCADE,
	channel_id INTEGER NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
	status     TEXT    NOT NULL,           -- delivered, failed
	attempts   INTEGER NOT NULL,
	error      TEXT    NOT NULL DEFAULT '',
	at         INTEGER NOT NULL,
	PRIMARY KEY (event_id, channel_id)
) STRICT;
