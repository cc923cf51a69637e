/*
 * `herald push device|devices|online|all`: one call to the push API
 * (docs/api.md), over HTTP/1.1 by default or over TARS RPC with --tars
 * HOST:PORT (the generated PushAPI client stubs).  Prints the JSON answer
 * (for TARS, the response struct as JSON); exits 0 on success, 1 on an
 * error answer, 2 on bad usage, 3 when the server is unreachable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "PushAPI.h"
#include "cli/cli.h"
#include "cli/cli_http.h"
#include "core/b64.h"
#include "core/net.h"
#include "rpc/trpc.h"

static void push_usage(FILE *f) {
    fprintf(
        f, "usage: herald push device --key KEY --device DEV message\n"
           "       herald push devices --key KEY --device DEV [--device DEV...]"
           " message\n"
           "       herald push online --key KEY message\n"
           "       herald push all --key KEY message\n\n"
           "  --api URL            HTTP API, http://HOST:PORT or HOST:PORT\n"
           "                       (127.0.0.1:8080)\n"
           "  --tars HOST:PORT     use the TARS PushAPI instead of HTTP\n"
           "message: (--payload TEXT | --payload-b64 B64) [--ttl SECONDS]\n"
           "         [--request-id ID] [--collapse-key K] [--no-ack]\n"
           "         [--unknown-device store|reject]   (device, devices)\n\n"
           "KEY may come from $HERALD_API_KEY.\n");
}

/* ---- TARS ------------------------------------------------------------- */

static jce_str_t jstr_of(const json_t *req, const char *k) {
    return jce_str_from(json_string_value(json_object_get(req, k)));
}

/* The message fields of the JSON request as a PushMessage; payload bytes in
 * *raw (malloc'd). */
static int tars_msg(const json_t *req, herald_PushMessage *m, uint8_t **raw) {
    herald_PushMessage_init(m);
    m->requestId = jstr_of(req, "requestId");
    m->collapseKey = jstr_of(req, "collapseKey");
    json_t *v;
    if ((v = json_object_get(req, "ttl")))
        m->ttl = (int32_t)json_integer_value(v);
    if ((v = json_object_get(req, "needAck"))) m->needAck = json_is_true(v);
    const char *ud = json_string_value(json_object_get(req, "unknownDevice"));
    if (ud) /* PushMessage: 1 store, 2 reject (0: the app's setting) */
        m->unknownDevice = !strcmp(ud, "reject") ? 2 : 1;
    *raw = NULL;
    if ((v = json_object_get(req, "payload"))) {
        m->payload.data = (const uint8_t *)json_string_value(v);
        m->payload.len = (uint32_t)json_string_length(v);
    } else if ((v = json_object_get(req, "payloadB64"))) {
        size_t n = json_string_length(v), out = 0;
        *raw = malloc(B64_DEC_MAX(n) + 1);
        if (!*raw || b64_decode(*raw, B64_DEC_MAX(n) + 1, json_string_value(v),
                                n, &out) != 0)
            return -1;
        m->payload.data = *raw;
        m->payload.len = (uint32_t)out;
    }
    return 0;
}

static void tars_args(const char *what, const json_t *req, const char *key,
                      const herald_PushMessage *m, jce_out_t *args) {
    jce_str_t k = jce_str_from(key);
    if (!strcmp(what, "device")) {
        herald_PushSingleDeviceReq r = {k, jstr_of(req, "deviceId"), *m};
        herald_PushAPI_pushSingleDevice_args(args, 1, &r);
    } else if (!strcmp(what, "devices")) {
        json_t *ids = json_object_get(req, "deviceIds");
        size_t n = json_array_size(ids);
        jce_str_t *v = calloc(n + 1, sizeof *v);
        for (size_t i = 0; v && i < n; i++)
            v[i] = jce_str_from(json_string_value(json_array_get(ids, i)));
        herald_PushMultiDeviceReq r = {k, {v, v ? (uint32_t)n : 0}, *m};
        herald_PushAPI_pushMultiDevice_args(args, 1, &r);
        free(v);
    } else if (!strcmp(what, "online")) {
        herald_PushAllOnlineDeviceReq r = {k, *m};
        herald_PushAPI_pushAllOnlineDevice_args(args, 1, &r);
    } else {
        herald_PushAllDeviceReq r = {k, *m};
        herald_PushAPI_pushAllDevice_args(args, 1, &r);
    }
}

/* Decodes the answer's sBuffer and prints the response struct as JSON. */
static int tars_print(const char *what, const trpc_response_t *r,
                      jce_arena_t *a) {
    int32_t ret = 0;
    json_t *j = NULL;
    int rc;
    const uint8_t *b = r->body.data;
    size_t n = r->body.len;
    if (!strcmp(what, "device")) {
        herald_PushSingleDeviceRsp o;
        rc = herald_PushAPI_pushSingleDevice_result(b, n, 1, a, &ret, &o);
        j = rc == 0 ? herald_PushSingleDeviceRsp_to_json(&o) : NULL;
    } else if (!strcmp(what, "devices")) {
        herald_PushMultiDeviceRsp o;
        rc = herald_PushAPI_pushMultiDevice_result(b, n, 1, a, &ret, &o);
        j = rc == 0 ? herald_PushMultiDeviceRsp_to_json(&o) : NULL;
    } else if (!strcmp(what, "online")) {
        herald_PushAllOnlineDeviceRsp o;
        rc = herald_PushAPI_pushAllOnlineDevice_result(b, n, 1, a, &ret, &o);
        j = rc == 0 ? herald_PushAllOnlineDeviceRsp_to_json(&o) : NULL;
    } else {
        herald_PushAllDeviceRsp o;
        rc = herald_PushAPI_pushAllDevice_result(b, n, 1, a, &ret, &o);
        j = rc == 0 ? herald_PushAllDeviceRsp_to_json(&o) : NULL;
    }
    if (!j) {
        fprintf(stderr, "herald push: undecodable TARS answer (%d)\n", rc);
        return 1;
    }
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
    return ret == 0 ? 0 : 1;
}

static int push_tars(const char *what, const char *addr, const char *key,
                     const json_t *req) {
    char host[256];
    const char *colon = strrchr(addr, ':');
    long port;
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host ||
        cli_parse_long(colon + 1, 1, 65535, &port) < 0) {
        fprintf(stderr, "herald push: bad --tars '%s' (HOST:PORT)\n", addr);
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    herald_PushMessage m;
    uint8_t *raw;
    if (tars_msg(req, &m, &raw) < 0) {
        fprintf(stderr, "herald push: --payload-b64 is not valid base64\n");
        free(raw);
        return 2;
    }
    static const char *fn[] = {"pushSingleDevice", "pushMultiDevice",
                               "pushAllOnlineDevice", "pushAllDevice"};
    int which = !strcmp(what, "device")    ? 0
                : !strcmp(what, "devices") ? 1
                : !strcmp(what, "online")  ? 2
                                           : 3;
    jce_out_t args, frame, rbuf;
    jce_out_init(&args, JCE_POLICY_CPP);
    jce_out_init(&frame, JCE_POLICY_CPP);
    jce_out_init(&rbuf, JCE_POLICY_CPP);
    tars_args(what, req, key, &m, &args);
    int rc = trpc_request_encode(&frame, 1, TRPC_NORMAL, 1,
                                 "herald.PushServer.PushAPIObj", fn[which],
                                 &args, 10000);
    int fd = -1, out = 3;
    jce_arena_t *a = jce_arena_new(0);
    trpc_response_t r;
    if (rc == 0 && a &&
        net_connect_tcp(host, (int)port, NULL, false, &fd) == 0 &&
        net_set_nonblock(fd, false) == 0 &&
        (rc = trpc_call(fd, &frame, 1, 10000, &rbuf, a, &r)) == 0) {
        if (r.ret != 0) {
            printf("{\"tarsRet\":%d,\"desc\":\"%.*s\"}\n", (int)r.ret,
                   (int)r.desc.len, r.desc.data);
            out = 1;
        } else {
            out = tars_print(what, &r, a);
        }
    } else {
        fprintf(stderr, "herald push: TARS call to %s failed: %s\n", addr,
                rc < 0 ? herald_strerror(rc) : "cannot connect");
    }
    if (fd >= 0) close(fd);
    jce_arena_free(a);
    jce_out_free(&args);
    jce_out_free(&frame);
    jce_out_free(&rbuf);
    free(raw);
    return out;
}

/* What is wrong with the call, in one line, or NULL.  A push with no
 * payload option at all is refused: an empty push sent by mistake reaches
 * every device it names (--payload '' sends one on purpose). */
static const char *push_refusal(const char *what, const char *key, int argc,
                                char **argv, const json_t *req, const char *url,
                                char *host, size_t cap, int *port) {
    static char why[256];
    bool device = !strcmp(what, "device"), multi = !strcmp(what, "devices");
    if (optind < argc) {
        snprintf(why, sizeof why,
                 "unexpected argument '%.100s' (the payload goes in --payload"
                 " TEXT)",
                 argv[optind]);
        return why;
    }
    if (!key || !*key)
        return "no API key: give --key KEY or set $HERALD_API_KEY";
    if (device && !json_object_get(req, "deviceId"))
        return "--device DEV is required";
    if (multi && json_array_size(json_object_get(req, "deviceIds")) == 0)
        return "at least one --device DEV is required";
    if (!json_object_get(req, "payload") && !json_object_get(req, "payloadB64"))
        return "no --payload TEXT or --payload-b64 B64 (--payload '' sends an"
               " empty push on purpose)";
    if (cli_http_parse_url(url, host, cap, port) < 0) {
        snprintf(why, sizeof why,
                 "bad --api '%.100s' (http://HOST:PORT or HOST:PORT)", url);
        return why;
    }
    return NULL;
}

int cli_push(int argc, char **argv) {
    static const struct option opts[] = {
        {"api", required_argument, 0, 'u'},
        {"key", required_argument, 0, 'k'},
        {"device", required_argument, 0, 'd'},
        {"payload", required_argument, 0, 'p'},
        {"payload-b64", required_argument, 0, 'b'},
        {"ttl", required_argument, 0, 't'},
        {"request-id", required_argument, 0, 'r'},
        {"collapse-key", required_argument, 0, 'c'},
        {"no-ack", no_argument, 0, 'n'},
        {"unknown-device", required_argument, 0, 'U'},
        {"tars", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        push_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    bool device = !strcmp(what, "device"), multi = !strcmp(what, "devices");
    if (!device && !multi && strcmp(what, "online") && strcmp(what, "all")) {
        fprintf(stderr, "herald push: unknown target '%s'\n", what);
        push_usage(stderr);
        return 2;
    }
    const char *url = "http://127.0.0.1:8080", *key = getenv("HERALD_API_KEY");
    const char *tars = NULL;
    json_t *req = json_object();
    json_t *ids = json_array();
    if (multi) json_object_set(req, "deviceIds", ids);
    json_decref(ids);
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'd':
            if (multi)
                json_array_append_new(ids, json_string(optarg));
            else
                json_object_set_new(req, "deviceId", json_string(optarg));
            break;
        case 'T': tars = optarg; break;
        case 'p':
            json_object_set_new(req, "payload", json_string(optarg));
            break;
        case 'b':
            json_object_set_new(req, "payloadB64", json_string(optarg));
            break;
        case 'r':
            json_object_set_new(req, "requestId", json_string(optarg));
            break;
        case 'c':
            json_object_set_new(req, "collapseKey", json_string(optarg));
            break;
        case 'n': json_object_set_new(req, "needAck", json_false()); break;
        case 'U':
            if (strcmp(optarg, "store") && strcmp(optarg, "reject")) {
                fprintf(stderr, "herald push: --unknown-device is store or "
                                "reject\n");
                json_decref(req);
                return 2;
            }
            json_object_set_new(req, "unknownDevice", json_string(optarg));
            break;
        case 't':
            if (cli_parse_long(optarg, 0, 1L << 40, &v) < 0) {
                fprintf(stderr, "herald push: bad --ttl '%s'\n", optarg);
                json_decref(req);
                return 2;
            }
            json_object_set_new(req, "ttl", json_integer(v));
            break;
        case 'h':
            push_usage(stdout);
            json_decref(req);
            return 0;
        default:
            push_usage(stderr);
            json_decref(req);
            return 2;
        }
    }
    char host[256];
    int port;
    const char *why =
        push_refusal(what, key, argc, argv, req, url, host, sizeof host, &port);
    if (why) {
        fprintf(stderr, "herald push %s: %s\n\n", what, why);
        push_usage(stderr);
        json_decref(req);
        return 2;
    }
    if (tars) {
        int trc = push_tars(what, tars, key, req);
        json_decref(req);
        return trc;
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) return 1;
    int fd, rc = net_connect_tcp(host, port, NULL, false, &fd);
    if (rc < 0) {
        fprintf(stderr, "herald push: connect %s:%d: %s\n", host, port,
                strerror(-rc));
        free(body);
        return 3;
    }
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/push/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Authorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      what, host, port, key, strlen(body));
    char *rbody = NULL;
    int status = -1;
    if (hl > 0 && (size_t)hl < sizeof head &&
        cli_http_write_all(fd, head, (size_t)hl) == 0 &&
        cli_http_write_all(fd, body, strlen(body)) == 0)
        status = cli_http_read_response(fd, &rbody);
    close(fd);
    free(body);
    if (status < 0) {
        fprintf(stderr, "herald push: no valid answer from %s:%d\n", host,
                port);
        return 3;
    }
    printf("%s\n", rbody);
    free(rbody);
    return status >= 200 && status < 300 ? 0 : 1;
}
