DROP TABLE job_cron;
DROP TABLE jobs;
