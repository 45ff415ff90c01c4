-- A sliding session (an API token issued by login) expires idle
-- milliseconds after its last use; NULL: expires stays where it was set.
ALTER TABLE sessions ADD COLUMN idle INTEGER;
