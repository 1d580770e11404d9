/*
 * The monotonic clock, for timeouts, hold-downs and moving averages of
 * how long things take: never the wall clock, which can step.
 */
#ifndef COMMON_MONO_H
#define COMMON_MONO_H

#include <stdint.h>

/* Seconds since an arbitrary start (CLOCK_MONOTONIC). */
double mono_s(void);
/* The same in whole milliseconds. */
uint64_t mono_ms(void);

#endif
