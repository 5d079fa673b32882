DROP TABLE certificates;
DROP TABLE certificate_templates;
DROP TABLE ticket_messages;
DROP TABLE tickets;
