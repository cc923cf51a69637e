/*
 * `herald listen`: acts as a device.  Connects over raw TCP (YYB) or
 * WebSocket (JSON text), authenticates, prints each push as one line on
 * stdout, acks it, heartbeats, and reconnects with exponential backoff and
 * jitter (capped at 30 s).  Duplicates (same msgId, e.g. a redelivery after
 * a reconnect) are printed once, remembered in a bounded FIFO set.  Status
 * lines (`connected`, `disconnected reason=...`) go to stderr.
 *
 * Blocking I/O and poll(): one connection, nothing to multiplex, and the
 * code reads top to bottom like the protocol does.
 *
 * This file holds the options, the duplicate set, printing and the
 * reconnect loop; each transport is a file of its own, cli_listen_tcp.c
 * and cli_listen_ws.c (shared types: cli_listen_int.h).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/cli.h"
#include "cli/cli_listen_int.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/net.h"
#include "core/token.h"
#include "gateway/ws.h"
#include "gateway/yyb.h"
#include "jce/jce.h"

#define BACKOFF_CAP_MS 30000

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void listen_usage(FILE *f) {
    fprintf(
        f,
        "usage: herald listen --server HOST:PORT (or ws://HOST:PORT)\n"
        "                     (--token TOK | --app APP --device DEV\n"
        "                      (--secret S | --secret-file F))\n"
        "                     [--ws] [--json] [--heartbeat SECONDS]"
        " [--count N]\n\n"
        "Prints `push msgId=... timeline=inbox seq=... payload=...` per\n"
        "message (timeline=broadcast seq=..., or timeline=online), or one\n"
        "JSON object per line with --json; acks it, heartbeats, reconnects.\n"
        "--count N exits 0 after N distinct pushes.\n");
}

/* ---- duplicate set -------------------------------------------------------- */

static bool seen_check_add(listener_t *l, const char *id, size_t n) {
    if (n > MSGID_MAX) n = MSGID_MAX;
    for (int i = 0; i < l->seen_n; i++)
        if (strlen(l->seen[i]) == n && !memcmp(l->seen[i], id, n)) return true;
    memcpy(l->seen[l->seen_next], id, n);
    l->seen[l->seen_next][n] = 0;
    l->seen_next = (l->seen_next + 1) % SEEN_MAX;
    if (l->seen_n < SEEN_MAX) l->seen_n++;
    return false;
}

/* ---- output ----------------------------------------------------------------- */

static bool printable_text(const uint8_t *p, size_t n) {
    uint8_t st[3] = {0};
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f) return false;
    return ws_utf8_step(st, p, n) && st[0] == 0;
}

/* One delivered message: prints it unless it is a duplicate.  Returns
 * true when --count is reached. */
bool cli_listen_deliver(listener_t *l, const char *id, size_t id_len,
                        int64_t seq, int timeline, const uint8_t *payload,
                        size_t plen, const char *topic, size_t topic_len) {
    if (seen_check_add(l, id, id_len)) return false;
    bool text = printable_text(payload, plen);
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "msgId", json_stringn(id, id_len));
        json_object_set_new(o, "seq", json_integer(seq));
        json_object_set_new(o, "timeline", json_integer(timeline));
        if (topic_len)
            json_object_set_new(o, "topic", json_stringn(topic, topic_len));
        if (text) {
            json_object_set_new(o, "payload",
                                json_stringn((const char *)payload, plen));
        } else {
            char *b = malloc(B64_ENC_LEN(plen) + 1);
            if (b) {
                b64_encode(b, payload, plen);
                json_object_set_new(o, "payloadB64", json_string(b));
                free(b);
            }
        }
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (s) printf("%s\n", s);
        free(s);
    } else {
        /* Which timeline it came from: inbox and broadcast seqs count
         * separately, and an online-only push has none. */
        static const char *const names[] = {"inbox", "broadcast", "online"};
        char where[64];
        if (timeline == 2)
            snprintf(where, sizeof where, "timeline=online");
        else
            snprintf(where, sizeof where, "timeline=%s seq=%lld",
                     timeline == 1 ? names[1] : names[0], (long long)seq);
        if (text) {
            printf("push msgId=%.*s %s payload=%.*s\n", (int)id_len, id, where,
                   (int)plen, (const char *)payload);
        } else {
            char *b = malloc(B64_ENC_LEN(plen) + 1);
            if (b) b64_encode(b, payload, plen);
            printf("push msgId=%.*s %s payloadB64=%s\n", (int)id_len, id, where,
                   b ? b : "");
            free(b);
        }
    }
    fflush(stdout);
    l->printed++;
    return l->count > 0 && l->printed >= l->count;
}

/* ---- I/O helpers ------------------------------------------------------------ */

/* Reads what is there into rx (poll said readable).  1 on data, 0 on EOF,
 * -1 on error or overflow. */
int cli_listen_recv_some(listener_t *l) {
    if (l->rx_len == RX_MAX) return -1;
    ssize_t n;
    do n = read(l->fd, l->rx + l->rx_len, RX_MAX - l->rx_len);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return n == 0 ? 0 : -1;
    l->rx_len += (size_t)n;
    return 1;
}

void cli_listen_rx_consume(listener_t *l, size_t n) {
    memmove(l->rx, l->rx + n, l->rx_len - n);
    l->rx_len -= n;
}

/* ---- sessions and the reconnect loop ------------------------------------------- */

static int mint_token(listener_t *l) {
    if (l->token) {
        if (strlen(l->token) >= sizeof l->tok) return -1;
        strcpy(l->tok, l->token);
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    return token_mint(l->tok, sizeof l->tok, l->app, l->device, now, now + 3600,
                      (const uint8_t *)l->secret, strlen(l->secret)) < 0
               ? -1
               : 0;
}

static int session(listener_t *l, bool *authed) {
    int rc = net_connect_tcp(l->host, l->port, NULL, false, &l->fd);
    if (rc < 0) {
        fprintf(stderr, "disconnected reason=connect_failed error=\"%s\"\n",
                strerror(-rc));
        return S_RETRY;
    }
    l->rx_len = 0;
    yyb_reader_init(&l->yr, false);
    int st = S_RETRY;
    bool closed = false;
    if (l->ws) {
        rc = cli_listen_ws_upgrade(l);
        if (rc < 0) {
            close(l->fd);
            return rc == -2 ? S_EXIT_FAIL : S_RETRY;
        }
        fprintf(stderr, "connected transport=ws\n");
        *authed = true;
    } else if (cli_listen_tcp_hello(l) < 0) {
        closed = true;
    }
    uint64_t next_hb = clock_mono_ms() + (uint64_t)l->heartbeat * 1000;
    while (!closed && st == S_RETRY && !stop_flag) {
        uint64_t now = clock_mono_ms();
        if (now >= next_hb) {
            if ((l->ws ? cli_listen_ws_heartbeat(l)
                       : cli_listen_tcp_heartbeat(l)) < 0)
                break;
            next_hb = now + (uint64_t)l->heartbeat * 1000;
        }
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        int n = poll(&pf, 1, (int)(next_hb - now));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        int r = cli_listen_recv_some(l);
        if (r <= 0) {
            fprintf(stderr, "disconnected reason=%s\n",
                    r == 0 ? "eof" : "read_error");
            closed = true;
            break;
        }
        /* A device port answers YYB frames; "HTTP/" is the push API or
         * the admin port, and its answer read as a frame length is just
         * "frame too large" forever. */
        if (!l->ws && l->rx_len >= 5 && !memcmp(l->rx, "HTTP/", 5)) {
            fprintf(stderr,
                    "herald listen: %s:%d answered in HTTP: this is"
                    " not a device port (herald serve prints it as 'device"
                    " port N')\n",
                    l->host, l->port);
            st = S_EXIT_FAIL;
            break;
        }
        st = l->ws ? cli_listen_ws_input(l, &closed)
                   : cli_listen_tcp_input(l, &closed);
        if (!l->ws) *authed = true;
    }
    if (!closed && (stop_flag || st == S_EXIT_OK)) {
        if (l->ws) {
            uint8_t code[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xff};
            (void)cli_listen_ws_send(l, WS_OP_CLOSE, code,
                                     2); /* leaving anyway */
        } else {
            cli_listen_tcp_bye(l);
        }
    }
    close(l->fd);
    l->fd = -1;
    return stop_flag ? S_EXIT_OK : st;
}

static void sleep_backoff(uint64_t ms) {
    uint64_t until = clock_mono_ms() + ms;
    while (!stop_flag) {
        uint64_t now = clock_mono_ms();
        if (now >= until) return;
        (void)poll(NULL, 0, (int)(until - now)); /* EINTR ends it early */
    }
}

static int run(listener_t *l) {
    uint64_t backoff = 500;
    while (!stop_flag) {
        if (mint_token(l) < 0) {
            fprintf(stderr, "herald listen: cannot make a token (check "
                            "--app/--device/--secret)\n");
            return 1;
        }
        bool authed = false;
        int st = session(l, &authed);
        if (st == S_EXIT_OK) return 0;
        if (st == S_EXIT_FAIL) return 1;
        if (stop_flag) break;
        if (authed) backoff = 500;
        uint32_t r = 0;
        (void)RAND_bytes((unsigned char *)&r, sizeof r); /* 0 is fine too */
        /* Full jitter in [backoff/2, backoff): a fleet that lost one
         * gateway does not come back in lockstep. */
        uint64_t wait = backoff / 2 + r % (backoff / 2 + 1);
        fprintf(stderr, "reconnecting in_ms=%llu\n", (unsigned long long)wait);
        sleep_backoff(wait);
        backoff = backoff * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff * 2;
    }
    return 0;
}

/* HOST:PORT (raw TCP), tcp://HOST:PORT, or ws://HOST:PORT[/...] (which
 * means --ws).  NULL, or why it cannot be used. */
static const char *parse_server(listener_t *l, const char *s) {
    if (!strncmp(s, "ws://", 5)) {
        l->ws = true;
        s += 5;
    } else if (!strncmp(s, "tcp://", 6)) {
        s += 6;
    } else if (strstr(s, "://")) {
        return "the scheme is not one herald listen speaks (HOST:PORT or"
               " tcp://HOST:PORT for raw TCP, ws://HOST:PORT for WebSocket)";
    }
    size_t n = strcspn(s, "/"); /* ws://h:p/v1/ws: the path is herald's */
    char hp[300];
    if (n >= sizeof hp) return "the host is too long";
    memcpy(hp, s, n);
    hp[n] = 0;
    const char *c = strrchr(hp, ':');
    long p;
    if (!c || c == hp || (size_t)(c - hp) >= sizeof l->host ||
        cli_parse_long(c + 1, 1, 65535, &p) < 0)
        return "want HOST:PORT (the device port herald serve prints)";
    memcpy(l->host, hp, (size_t)(c - hp));
    l->host[c - hp] = 0;
    l->port = (int)p;
    return NULL;
}

int cli_listen(int argc, char **argv) {
    static const struct option opts[] = {
        {"server", required_argument, 0, 'S'},
        {"token", required_argument, 0, 'T'},
        {"app", required_argument, 0, 'a'},
        {"device", required_argument, 0, 'd'},
        {"secret", required_argument, 0, 's'},
        {"secret-file", required_argument, 0, 'f'},
        {"ws", no_argument, 0, 'w'},
        {"json", no_argument, 0, 'j'},
        {"heartbeat", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    listener_t *l = calloc(1, sizeof *l);
    if (!l) return 1;
    l->heartbeat = 30;
    l->fd = -1;
    l->secret = getenv("HERALD_SECRET");
    const char *server = NULL;
    char secret_buf[1024];
    int c, rc = 2;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'S': server = optarg; break;
        case 'T': l->token = optarg; break;
        case 'a': l->app = optarg; break;
        case 'd': l->device = optarg; break;
        case 's': l->secret = optarg; break;
        case 'f':
            if (cli_read_secret_file(optarg, secret_buf, sizeof secret_buf) <
                0) {
                fprintf(stderr, "herald listen: cannot read %s\n", optarg);
                goto out;
            }
            l->secret = secret_buf;
            break;
        case 'w': l->ws = true; break;
        case 'j': l->json = true; break;
        case 'b':
            if (cli_parse_long(optarg, 1, 3600, &v) < 0) goto usage;
            l->heartbeat = (int)v;
            break;
        case 'c':
            if (cli_parse_long(optarg, 1, 1L << 40, &v) < 0) goto usage;
            l->count = v;
            break;
        case 'h':
            listen_usage(stdout);
            rc = 0;
            goto out;
        default: goto usage;
        }
    }
    const char *why = !server          ? "--server HOST:PORT is required"
                      : optind != argc ? "unexpected argument"
                                       : parse_server(l, server);
    if (!why && !l->token && (!l->app || !l->device || !l->secret))
        why = "give --token TOK, or --app, --device and --secret (or"
              " --secret-file, or $HERALD_SECRET)";
    if (why) {
        fprintf(stderr, "herald listen: %s%s%s\n\n", why,
                optind != argc && server ? ": " : "",
                optind != argc && server ? argv[optind] : "");
        goto usage;
    }
    l->rx = malloc(RX_MAX);
    l->arena = jce_arena_new(RX_MAX * 2);
    if (!l->rx || !l->arena) {
        rc = 1;
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = run(l);
    goto out;
usage:
    listen_usage(stderr);
    rc = 2;
out:
    OPENSSL_cleanse(secret_buf, sizeof secret_buf);
    free(l->rx);
    if (l->arena) jce_arena_free(l->arena);
    free(l);
    return rc;
}
