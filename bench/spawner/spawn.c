/* The bench's process launcher: fork + exec one plugin, wait for it, and report its wall time and
 * peak RSS. Linux's ru_maxrss of a child counts the memory of the process it was forked from (exec
 * records the old address space's high-water mark), so launching plugins straight from the Rust
 * bench would put a floor of the bench's own RSS under every figure. This launcher is static and
 * tiny, so the figure is the plugin's own, for podwire and the reference alike.
 *
 * Usage: spawn PROGRAM   (environment, stdin, stdout and stderr are the plugin's)
 * Appends to stderr: "\n@@pwbench maxrss_kib=N ns=N\n"; exits with the plugin's status.
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
    fprintf(stderr, "\n@@pwbench maxrss_kib=%ld ns=%lld\n", ru.ru_maxrss, ns);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
