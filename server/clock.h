/* The wall clock: what events, rounds and timers are stamped with. */
#ifndef REFINE_CLOCK_H
#define REFINE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ms(void);

#endif
