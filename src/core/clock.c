/* clock: thin wrappers over clock_gettime (a vDSO call, no syscall). */
#include <time.h>

#include "core/clock.h"

static uint64_t read_ns(clockid_t id) {
    struct timespec ts;
    /* Cannot fail for these clock ids on Linux. */
    (void)clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ms(void) { return read_ns(CLOCK_MONOTONIC) / 1000000u; }

uint64_t clock_mono_us(void) { return read_ns(CLOCK_MONOTONIC) / 1000u; }

uint64_t clock_wall_ms(void) { return read_ns(CLOCK_REALTIME) / 1000000u; }
