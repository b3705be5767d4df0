/* no_namespaces: runs a command where namespaces cannot be made, as in a
 * container under Docker's default seccomp profile without CAP_SYS_ADMIN:
 * unshare and setns fail with EPERM, clone with any CLONE_NEW* flag fails
 * with EPERM, and clone3 (whose flags a filter cannot see) with ENOSYS,
 * so that glibc falls back to clone. The filter is inherited by everything
 * the command starts and cannot be lifted.
 *
 * Usage: no_namespaces COMMAND [ARGS...]
 *
 * The end-to-end suite runs the server under it to create, for real and
 * without touching the machine's settings, a host that gives no
 * namespaces. */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: no_namespaces COMMAND [ARGS...]\n");
        return 2;
    }
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f) {
        fprintf(stderr, "no_namespaces: seccomp_init failed\n");
        return 1;
    }
    int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 0);
    /* Rules for one call are or'ed: one per flag makes "any of them". */
    const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                      CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; !rc && i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Root may load a filter without it; anyone else needs no_new_privs. */
    if (!rc && geteuid() != 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        rc = -errno;
    if (!rc)
        rc = seccomp_load(f);
    seccomp_release(f);
    if (rc) {
        fprintf(stderr, "no_namespaces: cannot install the filter: %s\n", strerror(-rc));
        return 1;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no_namespaces: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
