/* The bench's process launcher: fork + exec one plugin, wait for it, and report its wall time and
 * peak RSS. Linux's ru_maxrss of a child counts the memory of the process it was forked from (exec
 * records the old address space's high-water mark), so launching plugins straight from the Rust
 * bench would put a floor of the bench's own RSS under every figure. This launcher is static and
 * tiny, so the figure is the plugin's own, for podwire and the reference alike.
 *
 * Usage: spawn PROGRAM   (environment, stdin, stdout and stderr are the plugin's)
 * Appends to stderr: "\n@@pwbench maxrss_kib=N ns=N cpu_us=N\n" (cpu_us: user + system time of the
 * plugin and the children it reaped); exits with the plugin's status.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 127;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    long long cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
                       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    fprintf(stderr, "\n@@pwbench maxrss_kib=%ld ns=%lld cpu_us=%lld\n", ru.ru_maxrss, ns, cpu_us);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
