/* bench_noop: the cheapest program a bin task can be. It exits 0 with one
 * system call and no libc, linked static, so that spawning it costs only the
 * kernel's clone + exec + exit: any time a benchmark measures beyond that is
 * the server's own. */

/* The entry point: without libc, the linker's default symbol is ours. */
void _start(void);

#if defined(__x86_64__)
void _start(void)
{
    __asm__ volatile("mov $60, %eax\n\t" /* SYS_exit */
                     "xor %edi, %edi\n\t"
                     "syscall");
    __builtin_unreachable();
}
#elif defined(__aarch64__)
void _start(void)
{
    __asm__ volatile("mov x8, #93\n\t" /* SYS_exit */
                     "mov x0, #0\n\t"
                     "svc #0");
    __builtin_unreachable();
}
#else
#error "bench_noop supports x86_64 and aarch64; use /bin/true (bench_core.py --task-bin)"
#endif
