/* calc_sleep: a stand-in calculation for the calculation API's benchmark
 * and tests.
 *
 *   calc_sleep MIN_MS MAX_MS [LOG_FILE] NUMBER
 *
 * Sleeps between MIN_MS and MAX_MS milliseconds, then prints NUMBER times
 * two, computed on the decimal digits so that any JSON number stays exact
 * (12345678901234567890 -> 24691357802469135780, 1.25 -> 2.50, 3e5 -> 6e5).
 * The time slept is a hash of NUMBER's text (FNV-1a), so a benchmark can
 * add up the ideal total from its input alone. With LOG_FILE, appends one
 * line "START_US END_US NUMBER" (CLOCK_MONOTONIC microseconds) so that a
 * test can count how many calculations overlapped. Exits 2 on misuse. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Doubles the digits of the mantissa in place (the text before any 'e'),
 * writing the result into out. Returns 0, or -1 if s is not a number. */
static int double_text(const char *s, char *out, size_t size)
{
    size_t len = strlen(s);
    if (len + 3 > size || len == 0)
        return -1;
    const char *e = strpbrk(s, "eE");
    size_t mlen = e ? (size_t)(e - s) : len;
    size_t start = s[0] == '-' ? 1 : 0;
    /* Work right to left into a scratch buffer with room for a carry. */
    char tmp[4096];
    if (mlen + 2 > sizeof tmp)
        return -1;
    size_t j = sizeof tmp - 1;
    tmp[j] = '\0';
    int carry = 0, digits = 0;
    for (size_t i = mlen; i-- > start;) {
        char c = s[i];
        if (c == '.') {
            tmp[--j] = '.';
            continue;
        }
        if (c < '0' || c > '9')
            return -1;
        int d = (c - '0') * 2 + carry;
        tmp[--j] = (char)('0' + d % 10);
        carry = d / 10;
        digits++;
    }
    if (!digits)
        return -1;
    if (carry)
        tmp[--j] = '1';
    snprintf(out, size, "%s%s%s", start ? "-" : "", tmp + j, e ? e : "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: calc_sleep MIN_MS MAX_MS [LOG_FILE] NUMBER\n");
        return 2;
    }
    long lo = atol(argv[1]), hi = atol(argv[2]);
    const char *number = argv[argc - 1];
    if (lo < 0 || hi < lo) {
        fprintf(stderr, "calc_sleep: need 0 <= MIN_MS <= MAX_MS\n");
        return 2;
    }
    char result[4200];
    if (double_text(number, result, sizeof result) < 0) {
        fprintf(stderr, "calc_sleep: '%s' is not a number\n", number);
        return 2;
    }
    int64_t start = mono_us();
    long ms = lo + (long)(fnv1a(number) % (uint32_t)(hi - lo + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    if (argc == 5) {
        int fd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[4300];
            int n = snprintf(line, sizeof line, "%lld %lld %s\n", (long long)start,
                             (long long)mono_us(), number);
            if (write(fd, line, (size_t)n) != n)
                fprintf(stderr, "calc_sleep: short write to %s\n", argv[3]);
            close(fd);
        }
    }
    printf("%s\n", result);
    return 0;
}
