DROP TABLE event_registrations;
DROP TRIGGER events_fts_au;
DROP TRIGGER events_fts_ad;
DROP TRIGGER events_fts_ai;
DROP TABLE events_fts;
DROP TABLE events;
