DROP TABLE feature_overrides;
DROP TABLE feature_flags;
