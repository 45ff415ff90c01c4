-- Devices: each platform's per-device broker credentials. MyT is their
-- source of truth (a deploy re-applies them to the broker), so it keeps
-- the password's RabbitMQ hash, never the password. A revoked device
-- stays, so that a re-apply deletes its broker user; its name may be
-- given to a new device.
CREATE TABLE devices (
	id            INTEGER PRIMARY KEY,
	platform_id   INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	name          TEXT    NOT NULL,
	description   TEXT    NOT NULL DEFAULT '',
	password_hash TEXT    NOT NULL,                -- rabbit_password_hashing_sha256
	created       INTEGER NOT NULL,
	revoked       INTEGER,
	last_seen     INTEGER,                         -- last time the broker showed a connection of it
	connected     INTEGER NOT NULL DEFAULT 0,
	messages      INTEGER NOT NULL DEFAULT 0       -- published over its open connections, at last_seen
) STRICT;
CREATE INDEX devices_platform ON devices(platform_id, name);
-- One active device per name and platform.
CREATE UNIQUE INDEX devices_active ON devices(platform_id, name) WHERE revoked IS NULL;
