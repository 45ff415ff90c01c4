-- Alert channels of two kinds (webhook, email) and events that survive a
-- crash between their recording and their delivery.

-- kind: webhook (URL and secret sealed in platform_secrets under
-- alert/webhook/<id>) or email. target: a webhook's host (the rest of
-- its URL may hold a token), or an email channel's recipients, one per
-- line (addresses are not secret).
ALTER TABLE alert_channels ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE alert_channels ADD COLUMN target TEXT NOT NULL DEFAULT '';

-- dispatched: the event was sent to every channel (or there was none).
-- An event recorded but not dispatched when the server stopped is sent
-- at the next start (alert.Engine.Redeliver). Events recorded before
-- this migration count as dispatched.
ALTER TABLE alert_events ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 1;
CREATE INDEX alert_events_undispatched ON alert_events (id) WHERE dispatched = 0;
