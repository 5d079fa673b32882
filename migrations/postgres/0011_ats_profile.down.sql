ALTER TABLE career_jobs DROP COLUMN ats_profile;
ALTER TABLE career_resumes DROP COLUMN ats_profile;
