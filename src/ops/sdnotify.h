/*
 * sdnotify: the systemd notification protocol (sd_notify(3)) without
 * libsystemd: one datagram to the unix socket named by $NOTIFY_SOCKET
 * ('@' = abstract namespace).  Outside systemd (no $NOTIFY_SOCKET) every
 * call is a no-op that returns 0, so callers never need to know.
 */
#ifndef HERALD_OPS_SDNOTIFY_H
#define HERALD_OPS_SDNOTIFY_H

#include <signal.h>
#include <stdint.h>

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."):
 * 1 if sent, 0 if not under systemd, negative errno on failure. */
int ops_sd_notify(const char *state);

/* The watchdog period asked by systemd ($WATCHDOG_USEC, honouring
 * $WATCHDOG_PID), in microseconds; 0 if none. */
uint64_t ops_sd_watchdog_usec(void);

/* sigwait(set) that meanwhile sends WATCHDOG=1 every half period when
 * systemd asks for a watchdog.  Returns the signal taken. */
int ops_sd_wait_signal(const sigset_t *set);

#endif
