/*
 * server.h — `temel serve`: libh2o event loops, one per thread, each with its
 * own SO_REUSEPORT listener and database connection (ARCHITECTURE §1, §9).
 */
#ifndef TEMEL_SERVER_H
#define TEMEL_SERVER_H

#include "core/config.h"

/* Register every module's routes and freeze the table (cfg must outlive the server). */
void server_init(const struct config *cfg);
/* Runs until SIGTERM/SIGINT, then drains and returns the exit code (0). */
int server_run(void);
/* The OpenAPI document (built once, after server_init). */
str_t ops_openapi_json(void);
int64_t server_uptime_s(void);
const struct config *server_config(void);

/* Registered by ops.c / testroutes.c; called by server_run before freeze. */
void ops_register(void);
void testroutes_register(void);

#endif
