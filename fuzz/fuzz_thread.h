/* fuzz_thread: runs each fuzz input on a thread with the stack a civetweb
 * connection thread has.
 *
 * The parsers the harnesses exercise run on civetweb's connection threads
 * in the server. On libFuzzer's main thread (8 MiB of stack) deep recursion
 * goes unnoticed; on 100 KiB it overflows, which is how a body nested 811
 * deep crashed the server while the fuzzers ran clean. */
#ifndef TS_FUZZ_THREAD_H
#define TS_FUZZ_THREAD_H

#include <stddef.h>
#include <stdint.h>

/* Stack size of civetweb's connection threads in Debian's build (1.15):
 * the server's /proc/PID/maps shows one 102 400-byte mapping per
 * connection thread (65 of them with 64 threads), civetweb's compile-time
 * USE_STACK_SIZE. */
#define FUZZ_THREAD_STACK 102400

/* libFuzzer's entry point, which each harness defines: runs one input
 * (through fuzz_thread_run) and returns 0. Declared here, where every
 * harness finds it, rather than once per harness. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs fn(data, size) on the harness's thread of FUZZ_THREAD_STACK bytes of
 * stack (started on the first call) and waits for it to return. Aborts if
 * the thread cannot be started: running on the big stack instead would
 * hide what the harness is there to find. Calls must not overlap (libFuzzer
 * runs one input at a time). */
void fuzz_thread_run(void (*fn)(const uint8_t *data, size_t size), const uint8_t *data,
                     size_t size);

#endif
