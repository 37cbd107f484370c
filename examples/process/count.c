/*
 * count.c: websocketd's classic, for wsmod's process isolation.
 *
 * On start it greets the client with "hello <REMOTE_ADDR>"; then it echoes every line it reads on
 * stdin (one line = one WebSocket message) prefixed with a counter: "1: hello", "2: ...". It exits
 * when stdin closes, which happens when the client disconnects.
 *
 *   cc -O2 -o count count.c
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  /* Line-buffered stdout: each line reaches the client as soon as it is written. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  const char *addr = getenv("REMOTE_ADDR");
  printf("hello %s\n", addr != NULL ? addr : "unknown");
  fflush(stdout);

  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned long n = 0;
  while ((len = getline(&line, &cap, stdin)) != -1) {
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    printf("%lu: %s\n", ++n, line);
    fflush(stdout);
  }
  free(line);
  return 0;
}
