/*
 * ops_mem: the memory watermark (`herald serve --memory-high`).
 *
 * A sampler thread reads the process's resident size (/proc/self/statm)
 * every interval and keeps one flag: "overloaded" while RSS is above the
 * high watermark.  The gateway and the push API read the flag (one relaxed
 * atomic load) and refuse new work while it is set — new device
 * connections get ERR_OVERLOADED, pushes 503 `overloaded` — so the process
 * sheds load with a clear code instead of growing until the kernel kills
 * it.  Existing connections keep being served.
 *
 * While over, the sampler also calls malloc_trim(0) (at most every 250 ms),
 * so memory freed when the flood ends goes back to the kernel and RSS can
 * fall again.  The flag clears once RSS is at or below 90 % of the
 * watermark (hysteresis: it does not flap on every sample at the line).
 *
 * It also feeds two metrics, herald_overloaded and herald_memory_high_bytes
 * (readers set by ops_mem_start, cleared by ops_mem_free).
 */
#ifndef HERALD_OPS_OPS_MEM_H
#define HERALD_OPS_OPS_MEM_H

#include <stdbool.h>
#include <stdint.h>

#define OPS_MEM_INTERVAL_MS 100
#define OPS_MEM_AUTO_PCT 85 /* the default: this much of the memory limit */

typedef struct ops_mem ops_mem_t;

/* high: bytes of RSS, 0 = off (the sampler never runs, the flag stays
 * clear).  interval_ms <= 0: OPS_MEM_INTERVAL_MS.  NULL on out-of-memory. */
ops_mem_t *ops_mem_new(uint64_t high, int interval_ms);
/* Starts the sampler thread (nothing when high is 0).  0 or -errno. */
int ops_mem_start(ops_mem_t *m);
/* Stops the sampler, clears the metric readers, frees.  NULL is fine. */
void ops_mem_free(ops_mem_t *m);

/* True while RSS is above the watermark.  NULL-safe (false); any thread. */
bool ops_mem_over(const ops_mem_t *m);
uint64_t ops_mem_high(const ops_mem_t *m);
/* The last RSS sample, bytes (0 before the first). */
uint64_t ops_mem_last_rss(const ops_mem_t *m);

/* Resident set size of this process now, bytes; 0 if unreadable. */
uint64_t ops_mem_rss(void);
/* The memory this process may use: the cgroup's limit (v2 memory.max or
 * v1 memory.limit_in_bytes) when one is set, else physical RAM, whichever
 * is smaller; 0 if neither can be read.  *from names the source. */
uint64_t ops_mem_limit(const char **from);
/* "1048576", "512K", "512M", "2G", "1T" (binary multiples, case-insensitive,
 * an optional trailing "B" or "iB").  0 or -EINVAL. */
int ops_mem_parse_size(const char *s, uint64_t *out);

#endif
