/* Server configuration: command-line flags, each also readable from an
 * environment variable (the flag wins). */
#ifndef REFINE_CONFIG_H
#define REFINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "proxy.h"

#define CONFIG_MAX_ORIGINS 16
#define CONFIG_MAX_PROXIES 16
#define INSTANCE_NAME_MAX  16 /* an instance's name: 1..16 of [a-z0-9], a letter first */

struct config {
    int port;                /* --port, REFINE_PORT (8080) */
    const char *db;          /* --db, REFINE_DB (refine.db) */
    const char *web;         /* --web, REFINE_WEB (NULL: the built-in client) */
    int log_level;           /* --log-level, REFINE_LOG_LEVEL (info) */
    size_t max_message;      /* --max-message, REFINE_MAX_MESSAGE (65536) */
    size_t replay_events;    /* --replay-events, REFINE_REPLAY_EVENTS (512) */
    size_t max_queue;        /* --max-queue, REFINE_MAX_QUEUE (1 MiB) */
    const char *durability;  /* --durability, REFINE_DURABILITY (normal|full) */
    size_t rate;             /* --rate: messages per second per connection (50) */
    size_t max_conns_per_ip; /* --max-conns-per-ip (64) */
    size_t max_participants; /* --max-participants: per room (100) */
    size_t max_rooms;        /* --max-rooms (100000) */
    size_t max_db_mb;        /* --max-db-size: MiB, 0 for no cap */
    size_t max_room_bytes;   /* --max-room-bytes: a room's item state (16 MiB) */
    size_t cache_mb;         /* --cache-mb: the writer's SQLite page cache (64) */
    size_t group_commit_ms;  /* --group-commit-ms: transactions' least gap (0) */
    size_t log_cycle_ms;     /* --log-cycle-ms: the log applied at least this often */
    const char *tls_cert;    /* --tls-cert */
    const char *tls_key;     /* --tls-key */
    const char *origins[CONFIG_MAX_ORIGINS]; /* --allow-origin (repeatable), REFINE_ALLOW_ORIGIN */
    size_t norigins;
    struct proxy_net
        proxies[CONFIG_MAX_PROXIES]; /* --trusted-proxy (repeatable), REFINE_TRUSTED_PROXY */
    size_t nproxies;
    int print_protocol;   /* --print-protocol */
    const char *instance; /* --instance, REFINE_INSTANCE (NULL: the database's own name) */
    /* --admin-token, REFINE_ADMIN_TOKEN (NULL: no admin endpoints) */
    const char *admin_token;
};

/* Fills c from defaults, the environment and argv. Returns 0 to run, 1 when
 * --help or --print-protocol was handled (exit 0), or a negative RF_E* code
 * (RF_EBAD_REQUEST: a usage error, a message printed to err). */
int config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err);

/* Whether name[0..n) is an instance name: 1..INSTANCE_NAME_MAX characters of
 * [a-z0-9], the first a letter. */
bool config_instance_valid(const char *name, size_t n);

#endif
