/* A countdown allocator for the tests, SQLite-style (its test_malloc.c):
 * fails the Nth allocation the server makes, and counts them.
 *
 * Mechanism: the test executable is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * (tests/CMakeLists.txt, tests/fuzz/CMakeLists.txt), so every call to those
 * from our own objects (server/, protocol/, the tests, and msgpack-c's inline
 * sbuffer functions compiled into them) goes through alloc_fail.c; the server
 * is not changed. Not reached: allocations inside shared libraries (libc's
 * own, SQLite's, libmsgpack's zone and unpacker, OpenSSL, libuv, lws).
 *
 * Only the thread that armed the countdown counts (the loop thread): the
 * store's writer thread runs server code too, at times that vary run to run,
 * and is never failed. Allocations made while paused (the harness's own
 * bookkeeping) are neither counted nor failed. */
#ifndef REFINE_ALLOC_FAIL_H
#define REFINE_ALLOC_FAIL_H

#include <stdbool.h>

/* Starts counting on the calling thread from 0; the nth allocation from now
 * (n >= 1) returns NULL, once, or with persistent every one from the nth on
 * (SQLite's two modes); 0 never fails (a counting run). */
void alloc_fail_arm(long n, bool persistent);
/* Stops counting and failing. */
void alloc_fail_disarm(void);
/* Allocations counted since alloc_fail_arm(). */
long alloc_fail_count(void);
/* Whether the armed allocation has failed. */
bool alloc_fail_fired(void);
/* The harness's own work: nothing counts or fails until the matching
 * resume (they nest). */
void alloc_fail_pause(void);
void alloc_fail_resume(void);

#endif
