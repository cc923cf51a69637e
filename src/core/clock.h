/*
 * clock: the two clocks herald reads.  Monotonic milliseconds drive timers
 * and timeouts (never jumps with NTP or date changes); wall-clock time is
 * only for humans and for records that leave the process (logs, expiry of
 * tokens and messages).
 */
#ifndef HERALD_CORE_CLOCK_H
#define HERALD_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds / microseconds since an arbitrary fixed point (boot). */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);

/* Milliseconds since the Unix epoch (UTC). */
uint64_t clock_wall_ms(void);

#endif
