/*
 * The DaemonSet's view of the host: the host's /proc mounted somewhere else (host.proc) and
 * its root file system too (host.rootfs). There <proc>/net and <proc>/self/mountinfo are the
 * agent's own pod network and container mounts; the node's are those of its pid 1. A fake
 * host root gives both different contents, and the inputs must report the host's.
 */
#include "tests/unit/agent_input_test.h"

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

extern const struct dsf_input dsf_input_net, dsf_input_disk;

static char root[64], proc[128], rootfs[128];

/* Pod's view (self) and host's view (pid 1) of the same proc root. */
static const char pod_netdev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:     100       1    0    0    0     0          0         0      100       1    0 "
    "   0    0     0       0          0\n"
    "  eth0:    5000      50    0    0    0     0          0         0     6000      60    0 "
    "   0    0     0       0          0\n";
static const char host_netdev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:     100       1    0    0    0     0          0         0      100       1    0 "
    "   0    0     0       0          0\n"
    "  ens5: 7000000    7000    1    2    0     0          0         0  8000000     8000    3 "
    "   4    0     0       0          0\n"
    "  cni0:   90000     900    0    0    0     0          0         0    91000      910    0 "
    "   0    0     0       0          0\n";
static const char pod_mountinfo[] =
    "600 500 0:90 / / rw,relatime - ext4 /dev/container-disk rw\n"
    "601 600 0:91 / /etc/hosts rw,relatime - ext4 /dev/container-disk rw\n";
static const char host_mountinfo[] =
    "21 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
    "22 21 259:2 / /data ro,relatime shared:2 - xfs /dev/nvme1n1 rw\n";

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *fmt, const char *base)
{
    char path[256];
    snprintf(path, sizeof(path), fmt, base);
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* <root>/proc/{self,1}/{net/dev,mountinfo}, <root>/proc/net -> self/net as in procfs, and
 * the host's root file system at <root>/host with its /data. */
static int make_host_root(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/dsf-hostroot-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(proc, sizeof(proc), "%s/proc", root);
    snprintf(rootfs, sizeof(rootfs), "%s/host", root);
    const char *const dirs[] = {"%s/proc",       "%s/proc/self", "%s/proc/self/net", "%s/proc/1",
                                "%s/proc/1/net", "%s/host",      "%s/host/data"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        make_dir(dirs[i], root);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/self", proc);
    write_text(dir, "net/dev", pod_netdev);
    write_text(dir, "mountinfo", pod_mountinfo);
    snprintf(dir, sizeof(dir), "%s/1", proc);
    write_text(dir, "net/dev", host_netdev);
    write_text(dir, "mountinfo", host_mountinfo);
    snprintf(dir, sizeof(dir), "%s/net", proc);
    return symlink("self/net", dir);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int remove_host_root(void **state)
{
    (void)state;
    return nftw(root, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Starts an input with its defaults and this proc root and rootfs. */
static void start_with(struct input_run *r, const struct dsf_input *in, const char *host_rootfs)
{
    char err[DSF_CFG_ERRLEN] = "";
    const struct dsf_input_env env = {proc, "/sys", host_rootfs, 1000};
    if (input_try_start_env(r, in, "{}", &env, err, sizeof(err)))
        fail_msg("init %s: %s", in->name, err);
}

static void net_reports_the_hosts_interfaces_not_the_pods(void **state)
{
    (void)state;
    struct input_run r;
    start_with(&r, &dsf_input_net, rootfs);
    input_collect(&r);
    const struct dsf_point *ens5 = find_point(&r.batch, "net", "interface", "ens5");
    if (!ens5)
        fail_msg("the host's ens5 is not reported");
    assert_int_equal((int64_t)point_field_or_fail(&r.batch, ens5, "bytes_recv"), 7000000);
    assert_int_equal((int64_t)point_field_or_fail(&r.batch, ens5, "bytes_sent"), 8000000);
    assert_non_null(find_point(&r.batch, "net", "interface", "cni0"));
    if (find_point(&r.batch, "net", "interface", "eth0"))
        fail_msg("the pod's eth0 is reported as the host's");
    check_prom(&r, "node_network_receive_bytes_total{device=\"ens5\"} 7000000");
    input_stop(&r);
}

/* The host's mounts, statvfs'd under host.rootfs and reported under the host's paths. */
static void disk_reports_the_hosts_mounts_under_rootfs(void **state)
{
    (void)state;
    struct input_run r;
    start_with(&r, &dsf_input_disk, rootfs);
    input_collect(&r);
    const struct dsf_point *data = find_point(&r.batch, "disk", "path", "/data");
    if (!data)
        fail_msg("the host's /data is not reported");
    assert_string_equal(point_tag(&r.batch, data, "device"), "nvme1n1");
    assert_string_equal(point_tag(&r.batch, data, "fstype"), "xfs");
    assert_string_equal(point_tag(&r.batch, data, "mode"), "ro");
    const struct dsf_point *top = find_point(&r.batch, "disk", "path", "/");
    assert_non_null(top);
    assert_string_equal(point_tag(&r.batch, top, "device"), "nvme0n1p1");
    assert_null(find_point(&r.batch, "disk", "device", "container-disk"));
    assert_null(find_point(&r.batch, "disk", "path", "/etc/hosts"));
    input_stop(&r);
}

/* Without host.rootfs the paths are looked up in the agent's own root, but the list of mounts
 * is still the host's. */
static void disk_lists_the_hosts_mounts_without_rootfs(void **state)
{
    (void)state;
    struct input_run r;
    start_with(&r, &dsf_input_disk, "");
    input_collect(&r);
    const struct dsf_point *top = find_point(&r.batch, "disk", "path", "/");
    if (!top)
        fail_msg("no point for /");
    assert_string_equal(point_tag(&r.batch, top, "device"), "nvme0n1p1");
    assert_null(find_point(&r.batch, "disk", "device", "container-disk"));
    input_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(net_reports_the_hosts_interfaces_not_the_pods),
        cmocka_unit_test(disk_reports_the_hosts_mounts_under_rootfs),
        cmocka_unit_test(disk_lists_the_hosts_mounts_without_rootfs),
    };
    return cmocka_run_group_tests(tests, make_host_root, remove_host_root);
}
