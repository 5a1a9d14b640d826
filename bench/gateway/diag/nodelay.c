/*
 * Diagnostic only: an LD_PRELOAD shim that sets TCP_NODELAY on every socket a process
 * accepts, to measure what Nagle's algorithm costs a server that does not set it itself.
 * bench/gateway/run.sh builds and uses it for kai with KAI_BENCH_KAI_NODELAY=1; kai's own code
 * is untouched.
 *
 *   cc -O2 -shared -fPIC -o nodelay.so nodelay.c -ldl
 *   LD_PRELOAD=$PWD/nodelay.so kai serve
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        /* Fails harmlessly on non-TCP sockets (Unix sockets). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return nodelay(real(fd, addr, len));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return nodelay(real(fd, addr, len, flags));
}
