/* clock.h - monotonic wall time for step times, progress and profiles. */
#ifndef ADVEX_CLOCK_H
#define ADVEX_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
double clock_ms(void);

#endif
