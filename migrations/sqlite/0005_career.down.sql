DROP TABLE career_resume_shares;
DROP TABLE career_applications_fts;
DROP TABLE career_applications;
DROP TABLE career_jobs_fts;
DROP TABLE career_jobs;
DROP TABLE career_resumes_fts;
DROP TABLE career_resumes;
