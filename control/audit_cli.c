/* damselfly-control audit verify FILE: the audit chain checked from the command line. */
#include "control/audit.h"
#include "control/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char audit_usage[] =
    "usage: damselfly-control audit verify FILE\n"
    "  Checks the hash chain of an audit log (docs/control.md): exit 0 when every\n"
    "  record chains to the one before, 1 naming the first changed, removed, reordered or\n"
    "  malformed line, 2 on a usage error.\n";

int control_audit_command(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(audit_usage, stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "verify") != 0) {
        fputs(audit_usage, stderr);
        return 2;
    }
    struct audit_verify_result r;
    char err[512];
    if (audit_verify(argv[2], &r, err, sizeof(err))) {
        fprintf(stderr, "%s: %s (%s)\n", argv[2], err, audit_fault_name(r.fault));
        return 1;
    }
    printf("%s: %" PRIu64 " records, the chain holds%s\n", argv[2], r.records,
           r.torn_tail ? "; the last line is torn (a crash while writing; cut off at the next "
                         "start)"
                       : "");
    return 0;
}
