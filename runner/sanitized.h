/* sanitized: whether this build runs under AddressSanitizer or
 * ThreadSanitizer, whose run-times turn vfork into fork and cannot follow
 * a child that shares our memory (clone with CLONE_VM): the spawners take
 * a slower, plainly forked path there. */
#ifndef TS_SANITIZED_H
#define TS_SANITIZED_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TS_SANITIZED 1
#endif
#endif

#endif
