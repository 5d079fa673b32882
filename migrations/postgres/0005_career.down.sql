DROP TABLE career_resume_shares;
DROP TABLE career_applications;
DROP TABLE career_jobs;
DROP TABLE career_resumes;
