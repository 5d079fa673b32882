-- 0011 ATS profiles (issue 9 item 7): the scoring view of a resume or job
-- (src/modules/career/ats.h, "ats<version>\n" then one "tag value" line per
-- skill, keyword or word), written with the row so that
-- GET /jobs/recommendations never tokenises documents. NULL, or a profile of
-- an older analyser version, is rebuilt from the text on first use.
ALTER TABLE career_resumes ADD COLUMN ats_profile TEXT;
ALTER TABLE career_jobs ADD COLUMN ats_profile TEXT;
