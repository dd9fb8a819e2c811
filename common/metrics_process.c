/* process_* (as the Prometheus client libraries name them) and damselfly_build_info, read
 * from /proc/self at each scrape. */
#include "common/daemon.h"
#include "common/file.h"
#include "common/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef DSF_VERSION
#define DSF_VERSION "0.1.0"
#endif
extern const char dsf_build_commit[];

static void family(struct dsf_buf *out, const char *name, const char *type, const char *help,
                   double v)
{
    prom_family(out, name, type, help);
    buf_printf(out, "%s ", name);
    prom_value(out, v);
    buf_putc(out, '\n');
}

/* The boot time does not change: /proc/stat is read at the first scrape only. */
static double boot_time_s(void)
{
    static double t = -1;
    if (t < 0) {
        char *stat = dsf_read_file("/proc/stat", NULL);
        const char *line = stat ? strstr(stat, "\nbtime ") : NULL;
        t = line ? strtod(line + 7, NULL) : 0;
        free(stat);
    }
    return t;
}

static double open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return 0;
    double n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n - 1; /* the directory's own descriptor */
}

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of /proc/self/stat,
 * counted after the command name, which may hold spaces and parentheses. */
static int read_stat(double *cpu_s, double *start_ticks, double *vsize, double *rss_pages)
{
    char *stat = dsf_read_file("/proc/self/stat", NULL);
    char *p = stat ? strrchr(stat, ')') : NULL;
    unsigned long long utime, stime, start, vsz, rss;
    int n = p ? sscanf(p + 2,
                       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                       "%*d %llu %llu %llu",
                       &utime, &stime, &start, &vsz, &rss)
              : 0;
    free(stat);
    if (n != 5)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(utime + stime) / hz;
    *start_ticks = (double)start / hz;
    *vsize = (double)vsz;
    *rss_pages = (double)rss;
    return 0;
}

void dsf_daemon_render_self(const char *name, struct dsf_buf *out)
{
    prom_family(out, "damselfly_build_info", "gauge",
                "Version and commit the daemon was built from (always 1).");
    buf_puts(out, "damselfly_build_info{daemon=\"");
    prom_label_value(out, name);
    buf_puts(out, "\",version=\"" DSF_VERSION "\",commit=\"");
    prom_label_value(out, dsf_build_commit);
    buf_puts(out, "\"} 1\n");
    double cpu, start, vsize, rss;
    if (read_stat(&cpu, &start, &vsize, &rss) == 0) {
        family(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", cpu);
        family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               rss * (double)sysconf(_SC_PAGESIZE));
        family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               vsize);
        family(out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", boot_time_s() + start);
    }
    family(out, "process_open_fds", "gauge", "Number of open file descriptors.", open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}
