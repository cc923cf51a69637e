/*
 * sdnotify: sd_notify(3) by hand (see sdnotify.h).  The main thread of
 * `herald serve` spends its life waiting for a stop signal; waiting with a
 * timeout lets it feed the watchdog from there, so a process whose main
 * thread is gone or stuck is restarted by systemd.
 */
#include "ops/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int ops_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@') sa.sun_path[0] = 0;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                                (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                       (struct sockaddr *)&sa, len);
    int rc = w < 0 ? -errno : 1;
    close(fd);
    return rc;
}

uint64_t ops_sd_watchdog_usec(void) {
    const char *us = getenv("WATCHDOG_USEC");
    if (!us || !*us) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid()) return 0;
    char *end;
    unsigned long long v = strtoull(us, &end, 10);
    return *end ? 0 : (uint64_t)v;
}

int ops_sd_wait_signal(const sigset_t *set) {
    uint64_t wd = ops_sd_watchdog_usec();
    if (!wd) {
        int sig = 0;
        while (sigwait(set, &sig) != 0) {}
        return sig;
    }
    uint64_t half = wd / 2;
    struct timespec ts = {.tv_sec = (time_t)(half / 1000000),
                          .tv_nsec = (long)(half % 1000000) * 1000};
    for (;;) {
        (void)ops_sd_notify("WATCHDOG=1"); /* a lost ping is retried */
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0) return sig;
    }
}
