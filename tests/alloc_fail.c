/* The countdown allocator (alloc_fail.h): the --wrap targets. */
#include "alloc_fail.h"

#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Per thread, so only the arming (loop) thread counts. Initial-exec TLS of
 * the executable: reading it never allocates. */
static _Thread_local struct {
    bool armed, fired, persistent;
    int paused;
    long count, fail_at;
} af;

void alloc_fail_arm(long n, bool persistent)
{
    af.armed = true;
    af.persistent = persistent;
    af.fired = false;
    af.count = 0;
    af.fail_at = n;
}

void alloc_fail_disarm(void)
{
    af.armed = false;
}

long alloc_fail_count(void)
{
    return af.count;
}

bool alloc_fail_fired(void)
{
    return af.fired;
}

void alloc_fail_pause(void)
{
    af.paused++;
}

void alloc_fail_resume(void)
{
    af.paused--;
}

/* Counts one allocation; true when it is the one to fail. */
static bool fail_now(void)
{
    if (!af.armed || af.paused)
        return false;
    ++af.count;
    if (af.fail_at == 0 || af.count < af.fail_at || (af.count > af.fail_at && !af.persistent))
        return false;
    af.fired = true;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}
