/*
 * LD_PRELOAD shim for tests: the wall clock of the process it is loaded into runs
 * DSF_CLOCK_OFFSET_S seconds off the host's (a VM whose clock differs from the scraper's),
 * so a test can tell the times a program put in its data from the times others stamp.
 * CLOCK_REALTIME only; straight to the system call (no dlsym, no allocation), which keeps it
 * safe in sanitizer builds.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, id, ts);
    const char *offset = getenv("DSF_CLOCK_OFFSET_S");
    if (rc == 0 && offset && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += strtol(offset, NULL, 10);
    return rc;
}
