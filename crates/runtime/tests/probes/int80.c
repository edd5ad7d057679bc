/* Seccomp probe (x86_64): tries unshare(CLONE_NEWUSER) through the 32-bit `int 0x80` entry,
 * which seccomp sees as another architecture. Prints "before", then "after <result>" if the
 * call returned at all. Built and run by crates/runtime/tests/seccomp.rs. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    long ret;
    printf("before\n");
    fflush(stdout);
    /* i386 unshare is 310; CLONE_NEWUSER */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(310), "b"(0x10000000) : "memory");
    printf("after %ld\n", ret);
    fflush(stdout);
    return 0;
}
