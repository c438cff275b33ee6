/* An LD_PRELOAD shim for the interop tests (tests/tests/interop_xl2tpd.rs): makes xl2tpd draw a
 * zero ID, as it does now and then by chance. xl2tpd (misc.c get_dev_entropy) reads 2 bytes of
 * /dev/urandom for each tunnel ID and each call ID it assigns, and never checks for 0. The
 * L2XDP_ZERO_DRAW-th such read (counting from 1) returns zeros. Built on the host for the
 * guest (the same Debian release): cc -shared -fPIC -o zero-draw.so xl2tpd-zero-draw.c -ldl.
 * The variable LD_PRELOAD is removed from the environment at load: pppd, which xl2tpd starts,
 * runs unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t (*real_read)(int, void *, size_t);
static int draws;
static int zero_draw;

__attribute__((constructor)) static void init(void) {
  const char *z = getenv("L2XDP_ZERO_DRAW");
  zero_draw = z ? atoi(z) : 0;
  unsetenv("LD_PRELOAD");
}

static int is_urandom(int fd) {
  char path[64], target[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0)
    return 0;
  target[n] = 0;
  return strcmp(target, "/dev/urandom") == 0;
}

ssize_t read(int fd, void *buf, size_t count) {
  if (!real_read)
    real_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
  ssize_t r = real_read(fd, buf, count);
  if (r == 2 && count == 2 && is_urandom(fd)) {
    draws++;
    if (draws == zero_draw) {
      memset(buf, 0, 2);
      fprintf(stderr, "xl2tpd-zero-draw: draw %d of /dev/urandom made 0\n", draws);
    }
  }
  return r;
}

ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen) {
  (void)buflen;
  return read(fd, buf, count);
}
