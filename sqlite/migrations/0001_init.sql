-- MyT control-plane schema, version 1.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
	id               INTEGER PRIMARY KEY,
	username         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash    TEXT    NOT NULL,          -- argon2id PHC string
	key_salt         BLOB    NOT NULL,          -- salt of the locking key
	wrapped_key      BLOB    NOT NULL,          -- data key sealed with the locking key
	key_gen          INTEGER NOT NULL DEFAULT 1, -- bumped when an admin reset destroys the data key
	admin            INTEGER NOT NULL DEFAULT 0,
	disabled         INTEGER NOT NULL DEFAULT 0,
	credentials_lost INTEGER NOT NULL DEFAULT 0,
	created          INTEGER NOT NULL           -- unix ms
) STRICT;

CREATE TABLE sessions (
	id          INTEGER PRIMARY KEY,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL CHECK (kind IN ('web', 'api')),
	name        TEXT    NOT NULL,
	token_hash  BLOB    NOT NULL UNIQUE,
	wrapped_key BLOB    NOT NULL,               -- data key sealed with a key derived from the token
	created     INTEGER NOT NULL,
	expires     INTEGER,                        -- NULL: never
	last_used   INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions(user_id, kind);

CREATE TABLE credentials (
	id      INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name    TEXT    NOT NULL,
	kind    TEXT    NOT NULL,
	public  TEXT    NOT NULL,                   -- JSON object of the non-secret fields
	sealed  BLOB    NOT NULL,                   -- secret fields, sealed with the data key, bound to (user, id)
	key_gen INTEGER NOT NULL,
	created INTEGER NOT NULL,
	UNIQUE (user_id, name)
) STRICT;

CREATE TABLE platforms (
	id       INTEGER PRIMARY KEY,
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name     TEXT    NOT NULL,
	status   TEXT    NOT NULL,
	design   TEXT    NOT NULL,                  -- JSON design document
	revision INTEGER NOT NULL DEFAULT 1,
	created  INTEGER NOT NULL,
	updated  INTEGER NOT NULL,
	UNIQUE (user_id, name)
) STRICT;

-- Operational secrets of a platform (generated passwords, SSH keys, CA
-- keys), sealed with the server key so monitoring works without the user.
CREATE TABLE platform_secrets (
	platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	sealed      BLOB    NOT NULL,
	PRIMARY KEY (platform_id, name)
) STRICT;

CREATE TABLE invites (
	id         INTEGER PRIMARY KEY,
	code_hash  BLOB    NOT NULL UNIQUE,
	created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	used_by    INTEGER REFERENCES users(id) ON DELETE SET NULL
) STRICT;
