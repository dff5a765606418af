#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "ops.h"

static const char USAGE[] =
    "Usage: refine-server [options]\n"
    "\n"
    "Refine: a real-time server for backlog refinement meetings.\n"
    "Every option can also be set with the environment variable shown; the flag wins.\n"
    "\n"
    "  --port N            TCP port for HTTP and WebSocket (REFINE_PORT, default 8080)\n"
    "  --db FILE           SQLite database file, created if missing (REFINE_DB, default "
    "refine.db)\n"
    "  --web DIR           serve the web client's files from DIR (e.g. web-client/dist)\n"
    "                      instead of the copy built into the server (REFINE_WEB,\n"
    "                      default: none, the built-in client)\n"
    "  --log-level LEVEL   error, warn, info or debug (REFINE_LOG_LEVEL, default info)\n"
    "  --max-message N     largest message accepted, in bytes (REFINE_MAX_MESSAGE, default 65536)\n"
    "  --replay-events N   recent events kept per room for rejoin with `since`\n"
    "                      (REFINE_REPLAY_EVENTS, default 512)\n"
    "  --max-queue N       bytes queued to one slow connection before it is closed\n"
    "                      (REFINE_MAX_QUEUE, default 1048576)\n"
    "  --durability MODE   normal: WAL, synchronous=NORMAL (survives a process crash);\n"
    "                      full: synchronous=FULL (survives power loss)\n"
    "                      (REFINE_DURABILITY, default normal)\n"
    "  --rate N            messages per second one connection may send; more are answered\n"
    "                      rate_limited, and a connection that keeps flooding is closed\n"
    "                      (REFINE_RATE, default 50)\n"
    "  --max-conns-per-ip N  WebSocket connections from one client address\n"
    "                      (REFINE_MAX_CONNS_PER_IP, default 64)\n"
    "  --max-participants N  participants of one room (REFINE_MAX_PARTICIPANTS, default 100)\n"
    "  --max-rooms N       rooms the server holds (REFINE_MAX_ROOMS, default 100000)\n"
    "  --max-room-bytes N  bytes of item fields one room holds, as MessagePack; changes past\n"
    "                      it are refused with too_large (REFINE_MAX_ROOM_BYTES, default\n"
    "                      16777216)\n"
    "  --max-db-size MB    largest database file; changes past it are refused with\n"
    "                      internal (REFINE_MAX_DB_SIZE, default 0: no cap)\n"
    "  --cache-mb N        the database writer's page cache, MiB (REFINE_CACHE_MB, default\n"
    "                      64); with the reader's and checkpointer's 2 MiB each, the\n"
    "                      SQLite page caches hold about N + 4 MiB at most\n"
    "  --group-commit-ms N  a transaction of the store starts at most every N ms: under\n"
    "                      load more changes share one (fewer pages written per change),\n"
    "                      at the cost of up to N ms more before an ok\n"
    "                      (REFINE_GROUP_COMMIT_MS, default 0: as soon as the last ended)\n"
    "  --log-cycle-ms N    the log is applied to the tables at least every N ms (and every\n"
    "                      50,000 records): longer writes fewer pages per change, keeps\n"
    "                      more copies in memory (REFINE_LOG_CYCLE_MS, default 5000)\n"
    "  --tls-cert FILE     serve https and wss with this PEM certificate (REFINE_TLS_CERT)\n"
    "  --tls-key FILE      and this PEM private key (REFINE_TLS_KEY)\n"
    "  --allow-origin O    also accept WebSocket handshakes from browser origin O, e.g.\n"
    "                      https://refine.example.com; repeatable (REFINE_ALLOW_ORIGIN,\n"
    "                      comma-separated). The server's own origin is always allowed.\n"
    "  --instance NAME     this instance's name, 1 to 16 of a-z and 0-9 starting with a\n"
    "                      letter: its rooms' ids start with NAME and a dot (REFINE_INSTANCE,\n"
    "                      default: the name stored in the database, or for a new one a\n"
    "                      generated name, i and 5 characters). A database keeps its name:\n"
    "                      started with another, the server refuses to start\n"
    "  --trusted-proxy NET a reverse proxy (an address, or a network such as 10.0.0.0/8) whose\n"
    "                      connections are counted and logged by the client address it sends\n"
    "                      in X-Forwarded-For (its last entry); repeatable\n"
    "                      (REFINE_TRUSTED_PROXY, comma-separated; default: none)\n"
    "  --admin-token T     the operator's token for the admin endpoints (moving a room:\n"
    "                      scripts/move-room), sent as Authorization: Bearer T\n"
    "                      (REFINE_ADMIN_TOKEN; unset: no admin endpoints)\n"
    "  --print-protocol    print the operation tables of protocol/PROTOCOL.md and exit\n"
    "  --help              print this help and exit\n";

bool config_instance_valid(const char *name, size_t n)
{
    if (n < 1 || n > INSTANCE_NAME_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
            return false;
    return true;
}

static int parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return RF_EBAD_REQUEST;
    *out = (size_t)v;
    return 0;
}

static int add_origins(struct config *c, const char *list, FILE *err)
{
    /* The environment's list stays allocated for the process's life. */
    char *copy = strdup(list);
    if (!copy)
        return RF_ENOMEM;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (c->norigins == CONFIG_MAX_ORIGINS) {
            fprintf(err, "refine-server: at most %d allowed origins\n", CONFIG_MAX_ORIGINS);
            return RF_EBAD_REQUEST;
        }
        c->origins[c->norigins++] = tok;
    }
    return 0;
}

static int add_proxies(struct config *c, const char *list, FILE *err)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (c->nproxies == CONFIG_MAX_PROXIES) {
            fprintf(err, "refine-server: at most %d trusted proxies\n", CONFIG_MAX_PROXIES);
            return RF_EBAD_REQUEST;
        }
        if (proxy_net_parse(tok, &c->proxies[c->nproxies])) {
            fprintf(err,
                    "refine-server: invalid --trusted-proxy '%s': an IP address or a network "
                    "such as 10.0.0.0/8 (see --help)\n",
                    tok);
            return RF_EBAD_REQUEST;
        }
        c->nproxies++;
    }
    return 0;
}

static int set_option(struct config *c, const char *name, const char *val, FILE *err)
{
    size_t v;
    if (strcmp(name, "port") == 0) {
        if (parse_size(val, 1, 65535, &v))
            goto bad;
        c->port = (int)v;
    } else if (strcmp(name, "db") == 0) {
        c->db = val;
    } else if (strcmp(name, "web") == 0) {
        c->web = val;
    } else if (strcmp(name, "log-level") == 0) {
        if ((c->log_level = log_parse_level(val)) < 0)
            goto bad;
    } else if (strcmp(name, "max-message") == 0) {
        if (parse_size(val, 256, 16u << 20, &c->max_message))
            goto bad;
    } else if (strcmp(name, "replay-events") == 0) {
        if (parse_size(val, 0, 1u << 20, &c->replay_events))
            goto bad;
    } else if (strcmp(name, "max-queue") == 0) {
        if (parse_size(val, 4096, (size_t)1 << 32, &c->max_queue))
            goto bad;
    } else if (strcmp(name, "durability") == 0) {
        if (strcmp(val, "normal") && strcmp(val, "full"))
            goto bad;
        c->durability = val;
    } else if (strcmp(name, "rate") == 0) {
        if (parse_size(val, 1, 100000, &c->rate))
            goto bad;
    } else if (strcmp(name, "max-conns-per-ip") == 0) {
        if (parse_size(val, 1, 1000000, &c->max_conns_per_ip))
            goto bad;
    } else if (strcmp(name, "max-participants") == 0) {
        if (parse_size(val, 1, 100000, &c->max_participants))
            goto bad;
    } else if (strcmp(name, "max-rooms") == 0) {
        if (parse_size(val, 1, 100000000, &c->max_rooms))
            goto bad;
    } else if (strcmp(name, "max-room-bytes") == 0) {
        if (parse_size(val, 65536, (size_t)1 << 30, &c->max_room_bytes))
            goto bad;
    } else if (strcmp(name, "max-db-size") == 0) {
        if (parse_size(val, 0, 1u << 30, &c->max_db_mb))
            goto bad;
    } else if (strcmp(name, "cache-mb") == 0) {
        if (parse_size(val, 1, 1u << 16, &c->cache_mb))
            goto bad;
    } else if (strcmp(name, "group-commit-ms") == 0) {
        if (parse_size(val, 0, 1000, &c->group_commit_ms))
            goto bad;
    } else if (strcmp(name, "log-cycle-ms") == 0) {
        if (parse_size(val, 10, 600000, &c->log_cycle_ms))
            goto bad;
    } else if (strcmp(name, "tls-cert") == 0) {
        c->tls_cert = val;
    } else if (strcmp(name, "tls-key") == 0) {
        c->tls_key = val;
    } else if (strcmp(name, "instance") == 0) {
        if (!config_instance_valid(val, strlen(val))) {
            fprintf(err,
                    "refine-server: invalid instance name '%s': 1 to %d characters of a-z and "
                    "0-9, starting with a letter (see --help)\n",
                    val, INSTANCE_NAME_MAX);
            return RF_EBAD_REQUEST;
        }
        c->instance = val;
    } else if (strcmp(name, "allow-origin") == 0) {
        return add_origins(c, val, err);
    } else if (strcmp(name, "trusted-proxy") == 0) {
        return add_proxies(c, val, err);
    } else if (strcmp(name, "admin-token") == 0) {
        if (strlen(val) < 16 || strlen(val) > 100)
            goto bad;
        c->admin_token = val;
    } else {
        fprintf(err, "refine-server: unknown option --%s (see --help)\n", name);
        return RF_EBAD_REQUEST;
    }
    return 0;
bad:
    fprintf(err, "refine-server: invalid value '%s' for --%s (see --help)\n", val, name);
    return RF_EBAD_REQUEST;
}

int config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err)
{
    static const struct {
        const char *env, *name;
    } envs[] = {{"REFINE_PORT", "port"},
                {"REFINE_DB", "db"},
                {"REFINE_WEB", "web"},
                {"REFINE_LOG_LEVEL", "log-level"},
                {"REFINE_MAX_MESSAGE", "max-message"},
                {"REFINE_REPLAY_EVENTS", "replay-events"},
                {"REFINE_MAX_QUEUE", "max-queue"},
                {"REFINE_DURABILITY", "durability"},
                {"REFINE_RATE", "rate"},
                {"REFINE_MAX_CONNS_PER_IP", "max-conns-per-ip"},
                {"REFINE_MAX_PARTICIPANTS", "max-participants"},
                {"REFINE_MAX_ROOMS", "max-rooms"},
                {"REFINE_MAX_ROOM_BYTES", "max-room-bytes"},
                {"REFINE_MAX_DB_SIZE", "max-db-size"},
                {"REFINE_CACHE_MB", "cache-mb"},
                {"REFINE_GROUP_COMMIT_MS", "group-commit-ms"},
                {"REFINE_LOG_CYCLE_MS", "log-cycle-ms"},
                {"REFINE_TLS_CERT", "tls-cert"},
                {"REFINE_TLS_KEY", "tls-key"},
                {"REFINE_ALLOW_ORIGIN", "allow-origin"},
                {"REFINE_INSTANCE", "instance"},
                {"REFINE_ADMIN_TOKEN", "admin-token"},
                {"REFINE_TRUSTED_PROXY", "trusted-proxy"}};

    memset(c, 0, sizeof *c);
    c->port = 8080;
    c->db = "refine.db";
    c->log_level = LOG_INFO;
    c->max_message = 65536;
    c->replay_events = 512;
    c->max_queue = 1u << 20;
    c->durability = "normal";
    c->rate = 50;
    c->max_conns_per_ip = 64;
    c->max_participants = 100;
    c->max_rooms = 100000;
    c->max_room_bytes = 16u << 20;
    c->cache_mb = 64;

    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *v = getenv(envs[i].env);
        if (v && *v && set_option(c, envs[i].name, v, err)) {
            fprintf(err, "refine-server: (from the environment variable %s)\n", envs[i].env);
            return RF_EBAD_REQUEST;
        }
    }
    int env_origins = (int)c->norigins, env_proxies = (int)c->nproxies;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, out);
            return 1;
        }
        if (strcmp(a, "--print-protocol") == 0) {
            ops_print_markdown(out);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "refine-server: unexpected argument '%s' (see --help)\n", a);
            return RF_EBAD_REQUEST;
        }
        const char *name = a + 2, *val;
        char buf[64];
        const char *eq = strchr(name, '=');
        if (eq) {
            size_t n = (size_t)(eq - name);
            if (n >= sizeof buf)
                n = sizeof buf - 1;
            memcpy(buf, name, n);
            buf[n] = '\0';
            name = buf;
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                fprintf(err, "refine-server: --%s needs a value (see --help)\n", name);
                return RF_EBAD_REQUEST;
            }
            val = argv[++i];
        }
        if (strcmp(name, "allow-origin") == 0 && env_origins >= 0) {
            c->norigins = 0; /* flags replace the environment's list */
            env_origins = -1;
        }
        if (strcmp(name, "trusted-proxy") == 0 && env_proxies >= 0) {
            c->nproxies = 0; /* flags replace the environment's list */
            env_proxies = -1;
        }
        if (set_option(c, name, val, err))
            return RF_EBAD_REQUEST;
    }
    if ((c->tls_cert != NULL) != (c->tls_key != NULL)) {
        fprintf(err, "refine-server: --tls-cert and --tls-key go together (see --help)\n");
        return RF_EBAD_REQUEST;
    }
    return 0;
}
